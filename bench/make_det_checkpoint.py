#!/usr/bin/env python3
"""Full-size random Mask R-CNN-on-VMamba-T checkpoint in the mmdet layout
(state_dict: backbone.* with outnorm0..3, neck.* FPN 256, rpn_head.* with 3
anchors, roi_head.* Shared2FC 1024 and the FCN mask head, 80 classes), for
INT8 vs FP32 timing of `vmamba detect`: bench/make_det_checkpoint.py OUT.pth.
Backbone as make_checkpoint.py's vmamba-tiny-s1l8. Needs python3-torch;
the command line, backbone and saving are bench/mmlayout.py's."""
import torch

import mmlayout

out = mmlayout.out_path(__doc__)
sd = mmlayout.backbone()
g = torch.Generator().manual_seed(2)
dims, F, ncls = mmlayout.DIMS, 256, 80
def t(name, *shape):
    fan = 1
    for s in shape[1:]: fan *= s
    sd[name + ".weight"] = torch.randn(*shape, generator=g) / max(fan, 1) ** 0.5
    sd[name + ".bias"] = 0.01 * torch.randn(shape[0], generator=g)
for i, c in enumerate(dims):
    t(f"neck.lateral_convs.{i}.conv", F, c, 1, 1); t(f"neck.fpn_convs.{i}.conv", F, F, 3, 3)
t("rpn_head.rpn_conv", F, F, 3, 3); t("rpn_head.rpn_cls", 3, F, 1, 1); t("rpn_head.rpn_reg", 12, F, 1, 1)
t("roi_head.bbox_head.shared_fcs.0", 1024, F * 49); t("roi_head.bbox_head.shared_fcs.1", 1024, 1024)
t("roi_head.bbox_head.fc_cls", ncls + 1, 1024); t("roi_head.bbox_head.fc_reg", 4 * ncls, 1024)
for i in range(4): t(f"roi_head.mask_head.convs.{i}.conv", F, F, 3, 3)
t("roi_head.mask_head.upsample", F, F, 2, 2); t("roi_head.mask_head.conv_logits", ncls, F, 1, 1)
mmlayout.save(sd, out)
