# Table 9: multimodal multitask CEN-enc & dec (Eq. 8; IN x4, enc x1, dec x2;
# Gen 89.3 M), RGB + Depth -> Normal + Shade: a shared encoder with a
# private IN per input exchanging between inputs, a per-decoder softmax α
# over the inputs (skips included), decoders exchanging between tasks.
_base_ = ['../_base_/gen_cen_multi_pix2pix_unet256_taskonomy_300k.py']

source_domains = ['rgb', 'depth_euclidean']
target_domains = ['normal', 'reshading']
flows = [dict(sources=source_domains, target=t) for t in target_domains]

# exchange statistics by stream index (encoder: the inputs, decoder: the
# tasks)
model = dict(
    flows=flows,
    generator=dict(encoder_exchange=True, decoder_exchange=True))
train_dataloader = val_dataloader = test_dataloader = dict(
    dataset=dict(source_domains=source_domains, target_domains=target_domains))
