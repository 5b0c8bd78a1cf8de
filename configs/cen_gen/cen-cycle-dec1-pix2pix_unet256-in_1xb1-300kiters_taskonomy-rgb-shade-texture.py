# Table 6: cycle multimodal fusion CEN-cycle (Eq. 6; IN x6, enc x1, dec x1;
# Gen 54.5 M) over RGB / Shade / Texture: flow j maps the two other
# modalities to modality j. One encoder shared by every flow with a private
# IN set per (flow, input) exchanging among the flow's inputs, one decoder
# shared by every flow (private decoder INs per stream, as official), a
# softmax ensemble per flow; all flows trained at every step.
_base_ = [
    '../_base_/gen_cen_runtime.py',
    '../_base_/gen_cen_multi_pix2pix_unet256.py',
    '../_base_/datasets/taskonomy_256x256.py',
]

modalities = ['rgb', 'reshading', 'edge_texture']
flows = [
    dict(sources=[m for m in modalities if m != t], target=t)
    for t in modalities
]

model = dict(
    flows=flows,
    units='per_flow',
    generator=dict(
        encoder_weights='shared',
        decoder_weights='shared',
        encoder_exchange=True,
        decoder_exchange=False))
# L1 on γ (λ = 1e-3); exchange statistics by stream index within a flow
custom_hooks = [dict(type='GammaSparsityHook', lam=1e-3, interval=100)]

data = dict(
    source_domains=None, target_domain=None, target_domains=None,
    flows=flows)
train_dataloader = dict(dataset=data)
val_dataloader = dict(dataset=data)
test_dataloader = val_dataloader

# official: 300 epochs x 1000 images at batch 1; validation every 5 epochs
train_cfg = dict(max_iters=300000, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=100000))

# per flow: its output (the ensemble, prefix '{target}') and every stream
# (prefix '{target}/{source}'); FID / KID (x100) for RGB (stored BGR), the
# paper's MAE / MSE (x100 on [-1, 1], MSE = root mean squared error)
# otherwise
val_evaluator = dict(
    type='CENTranslationEvaluator', targets=flows, streams=True, metrics=[])
test_evaluator = val_evaluator
