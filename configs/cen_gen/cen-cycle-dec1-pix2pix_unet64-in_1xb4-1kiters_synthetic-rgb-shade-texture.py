# CPU-sized cycle CEN (Eq. 6) on the procedural synthetic scenes: the three
# flows of RGB / Shade / Texture (the first row family of Table 6), one
# encoder shared by all flows with a private IN set per (flow, input),
# exchange among a flow's inputs, one decoder shared by all flows (dec x1),
# a softmax ensemble per flow; all flows trained at every step.
# Baselines: `cen-cycle-dec3-...` (a decoder per flow), `cen-random-...`
# (one random flow per step), `cen-indep-...` (independent CENs).
_base_ = ['./cen-dec-pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb2semseg-depth.py']

modalities = ['rgb', 'reshading', 'edge_texture']
flows = [
    dict(sources=[m for m in modalities if m != t], target=t)
    for t in modalities
]
target_domains = modalities

model = dict(
    flows=flows,
    units='per_flow',
    generator=dict(
        encoder_weights='shared',
        decoder_weights='shared',
        encoder_exchange=True,
        decoder_exchange=False))
train_dataloader = val_dataloader = test_dataloader = dict(
    dataset=dict(source_domains=None, target_domains=None, flows=flows))
custom_hooks = [dict(type='GammaSparsityHook', lam=1e-3, interval=50)]

# per flow: its output (the ensemble, prefix '{target}') and every stream
# (prefix '{target}/{source}'); the paper's MAE / MSE for every target here
# (FID / KID for RGB outputs in the Taskonomy configs).
val_evaluator = test_evaluator = dict(streams=True)
