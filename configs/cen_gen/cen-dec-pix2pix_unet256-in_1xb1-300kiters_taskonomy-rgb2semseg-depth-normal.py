# Table 8: multitask CEN-dec with three tasks (IN x3, enc x1, dec x3;
# Gen 124.2 M, paper 124.3), RGB -> SemSeg + Depth + Normal.
_base_ = ['../_base_/gen_cen_multi_pix2pix_unet256_taskonomy_300k.py']

source_domains = ['rgb']
target_domains = ['segment_semantic', 'depth_euclidean', 'normal']
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
