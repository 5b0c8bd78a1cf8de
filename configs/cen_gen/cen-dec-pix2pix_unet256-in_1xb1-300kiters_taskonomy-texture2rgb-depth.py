# Table 7: multitask CEN-dec (Eq. 7; IN x2, enc x1, dec x2; Gen 89.3 M),
# edge_texture -> rgb + depth_euclidean: a shared encoder, a decoder per task
# whose INs exchange channels (L1 on the decoder γ).
_base_ = ['../_base_/gen_cen_multi_pix2pix_unet256_taskonomy_300k.py']

source_domains = ['edge_texture']
target_domains = ['rgb', 'depth_euclidean']
flows = [dict(sources=source_domains, target=t) for t in target_domains]

model = dict(flows=flows)
# exchange statistics per decoder (task) stream
custom_hooks = [
    dict(
        type='GammaSparsityHook',
        lam=1e-3,
        interval=100,
        stream_names=target_domains)
]
train_dataloader = val_dataloader = test_dataloader = dict(
    dataset=dict(source_domains=source_domains, target_domains=target_domains))
