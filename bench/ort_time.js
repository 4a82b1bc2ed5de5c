// bench/ort_time.js - time ONNX models with onnxruntime-node (CPU EP), batch 1, 224x224, N intra-op threads.
// usage: node bench/ort_time.js THREADS ITERS WARMUP model.onnx...   (NODE_PATH: where onnxruntime-node is)
// One JSON line per model: latency_ms_median, latency_ms_min.
const ort = require('onnxruntime-node');
(async () => {
  const [threads, iters, warmup, ...models] = process.argv.slice(2);
  const x = new ort.Tensor('float32', Float32Array.from({length: 3 * 224 * 224}, () => Math.random() * 2 - 1), [1, 3, 224, 224]);
  for (const path of models) {
    const s = await ort.InferenceSession.create(path, {intraOpNumThreads: +threads, interOpNumThreads: 1,
      executionMode: 'sequential', graphOptimizationLevel: 'all', executionProviders: ['cpu'],
      // OMP_WAIT_POLICY=passive (a loaded machine): no spin-waiting in ORT's thread pool either, to compare alike
      ...(process.env.OMP_WAIT_POLICY === 'passive' ? {extra: {session: {intra_op: {allow_spinning: '0'}}}} : {})});
    const feeds = {[s.inputNames[0]]: x};
    for (let i = 0; i < +warmup; i++) await s.run(feeds);
    const t = [];
    for (let i = 0; i < +iters; i++) {
      const t0 = process.hrtime.bigint();
      await s.run(feeds);
      t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    t.sort((a, b) => a - b);
    const med = t.length % 2 ? t[(t.length - 1) / 2] : (t[t.length / 2 - 1] + t[t.length / 2]) / 2;
    console.log(JSON.stringify({model: path.split('/').pop().replace('.onnx', ''), runtime: 'onnxruntime-node ' + ort.env.versions.common,
      threads: +threads, latency_ms_median: +med.toFixed(3), latency_ms_min: +t[0].toFixed(3)}));
    await s.release();
  }
})().catch(e => { console.error(e.message || e); process.exit(1); });
