# Table 6: cycle multimodal fusion CEN-cycle (Eq. 6; IN x6, enc x1, dec x1;
# Gen 54.5 M) over RGB / Shade / Texture: flow j maps the two other
# modalities to modality j. One encoder shared by every flow with a private
# IN set per (flow, input) exchanging among the flow's inputs, one decoder
# shared by every flow (private decoder INs per stream, as official), a
# softmax ensemble per flow; all flows trained at every step.
_base_ = ['../_base_/gen_cen_multi_pix2pix_unet256_taskonomy_300k.py']

modalities = ['rgb', 'reshading', 'edge_texture']
flows = [
    dict(sources=[m for m in modalities if m != t], target=t)
    for t in modalities
]

# exchange statistics by stream index within a flow
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
# per flow: its output (the ensemble, prefix '{target}') and every stream
# (prefix '{target}/{source}')
val_evaluator = test_evaluator = dict(streams=True)
