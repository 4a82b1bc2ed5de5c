/* arch.c - the released presets, and parameter / FLOP accounting. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

const char *vm_family_name(vm_family f) {
    switch (f) {
    case VM_FAMILY_V0: return "v0";
    case VM_FAMILY_V2: return "v2";
    case VM_FAMILY_V2Z: return "v2z";
    default: return "other";
    }
}

typedef struct {
    const char *name;
    vm_family family;
    int C, d0, d1, d2, d3;
    float ssm_ratio;
} preset;

static const preset presets[] = {
    {"vanilla-vmamba-tiny", VM_FAMILY_V0, 96, 2, 2, 9, 2, 2.0f},
    {"vanilla-vmamba-small", VM_FAMILY_V0, 96, 2, 2, 27, 2, 2.0f},
    {"vanilla-vmamba-base", VM_FAMILY_V0, 128, 2, 2, 27, 2, 2.0f},
    {"vmamba-tiny-s2l5", VM_FAMILY_V2, 96, 2, 2, 5, 2, 2.0f},
    {"vmamba-small-s2l15", VM_FAMILY_V2, 96, 2, 2, 15, 2, 2.0f},
    {"vmamba-base-s2l15", VM_FAMILY_V2, 128, 2, 2, 15, 2, 2.0f},
    {"vmamba-tiny-s1l8", VM_FAMILY_V2, 96, 2, 2, 8, 2, 1.0f},
    {"vmamba-small-s1l20", VM_FAMILY_V2, 96, 2, 2, 20, 2, 1.0f},
    {"vmamba-base-s1l20", VM_FAMILY_V2, 128, 2, 2, 20, 2, 1.0f},
};

const char *const *vm_preset_names(void) {
    static const char *names[sizeof presets / sizeof *presets + 1];
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++) names[i] = presets[i].name;
    return names;
}

/* Fill `info` with a released architecture; returns -1 for an unknown name. */
int vm_arch_preset(const char *name, int num_classes, vm_info *info) {
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++) {
        const preset *p = &presets[i];
        if (strcmp(p->name, name) != 0) continue;
        memset(info, 0, sizeof *info);
        int v0 = p->family == VM_FAMILY_V0;
        int depths[4] = {p->d0, p->d1, p->d2, p->d3};
        for (int s = 0; s < 4; s++) {
            info->dims[s] = p->C << s;
            info->depths[s] = depths[s];
            info->d_inner[s] = (int)(p->ssm_ratio * (float)info->dims[s]);
            info->dt_rank[s] = (info->dims[s] + 15) / 16;
            info->mlp_hidden[s] = v0 ? 0 : 4 * info->dims[s];
        }
        info->family = p->family;
        info->d_state = v0 ? 16 : 1;
        info->z_gate = v0;
        info->conv_bias = v0;
        info->patch_embed_version = v0 ? 1 : 2;
        info->downsample_version = v0 ? 1 : 3;
        info->patch_size = 4;
        info->num_classes = num_classes > 0 ? num_classes : 1000;
        return 0;
    }
    return -1;
}

/* Multiply-adds of one forward pass (fvcore's convention, which the VMamba
 * paper's FLOPs use): GEMMs and convs, plus the selective scan counted as
 * 9*L*D*N + L*D per direction as in the official flop counter. */
double vm_arch_gmacs(const vm_model *m, int H, int W) {
    const vm_info *I = &m->info;
    double macs = 0;
    int h, w;
    if (I->patch_embed_version == 1) {
        h = vm_conv_out_size(H, I->patch_size, I->patch_size, 0);
        w = vm_conv_out_size(W, I->patch_size, I->patch_size, 0);
        macs += (double)h * w * I->dims[0] * 3 * I->patch_size * I->patch_size;
    } else {
        int h1 = vm_conv_out_size(H, 3, 2, 1), w1 = vm_conv_out_size(W, 3, 2, 1);
        int c1 = m->pe_conv1.cout;
        macs += (double)h1 * w1 * c1 * 3 * 9;
        h = vm_conv_out_size(h1, 3, 2, 1);
        w = vm_conv_out_size(w1, 3, 2, 1);
        macs += (double)h * w * I->dims[0] * c1 * 9;
    }
    for (int s = 0; s < 4; s++) {
        double L = (double)h * w;
        int C = I->dims[s], D = I->d_inner[s], R = I->dt_rank[s], N = I->d_state;
        double blk = L * C * D * (I->z_gate ? 2 : 1) /* in_proj */ + L * D * 9 /* dwconv */ +
                     L * D * 4 * (R + 2 * N) /* x_proj */ + L * 4 * R * D /* dt_proj */ +
                     4 * (9.0 * L * D * N + L * D) /* scan */ + L * D * C /* out_proj */ +
                     2.0 * L * C * I->mlp_hidden[s] /* mlp */;
        macs += blk * I->depths[s];
        if (s < 3) {
            int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
            if (I->downsample_version == 1)
                macs += (double)h2 * w2 * 4 * C * I->dims[s + 1];
            else
                macs += (double)h2 * w2 * C * I->dims[s + 1] * 9;
            h = h2;
            w = w2;
        }
    }
    macs += (double)I->dims[3] * I->num_classes;
    return macs / 1e9;
}

/* The architecture as JSON, for model-file metadata (informational: the
 * loader always re-derives it from the tensor shapes). */
void vm_arch_json(const vm_model *m, char *buf, size_t len) {
    const vm_info *I = &m->info;
    snprintf(buf, len,
             "{\"family\": \"%s\", \"dims\": [%d, %d, %d, %d], \"depths\": [%d, %d, %d, %d], \"d_state\": %d, "
             "\"ssm_ratio\": %g, \"mlp_ratio\": %g, \"z_gate\": %s, \"patch_embed_version\": %d, "
             "\"downsample_version\": %d, \"num_classes\": %d, \"backbone\": %s}",
             vm_family_name(I->family), I->dims[0], I->dims[1], I->dims[2], I->dims[3], I->depths[0], I->depths[1],
             I->depths[2], I->depths[3], I->d_state, I->ssm_ratio, I->mlp_ratio, I->z_gate ? "true" : "false",
             I->patch_embed_version, I->downsample_version, I->num_classes, I->is_backbone ? "true" : "false");
}
