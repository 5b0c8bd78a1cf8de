# The CEN family for several translation flows (CENMultiPix2Pix): one
# U-Net-256 generator (CENMultiUnetGenerator) serving every flow, one 70x70
# PatchGAN per flow (output modality). Optimisers, the L1-on-γ hook and the
# imports come from the fusion base. Default here: multitask CEN-dec
# (Eq. 7): shared encoder, a decoder per task with private INs that
# exchange channels. Children set `model.flows` (and the variant switches).
_base_ = ['./gen_cen_pix2pix_unet256.py']

model = dict(
    _delete_=True,
    type='CENMultiPix2Pix',
    flows=None,  # e.g. [dict(sources=['rgb'], target='depth_euclidean')]
    units='joint',  # 'joint': multitask (Eq. 7/8); 'per_flow': cycle (Eq. 6)
    flow_sampling='all',  # 'random': CEN-random (one flow per step)
    data_preprocessor=_base_.model.data_preprocessor,
    generator=dict(
        type='CENMultiUnetGenerator',
        # units / combine / ensemble are derived from `flows` and `units`
        encoder_weights='shared',  # enc x1; 'stream' / 'unit': enc xk
        decoder_weights='stream',  # a decoder per task (dec xk)
        encoder_exchange=False,  # CEN-enc
        decoder_exchange=True,  # CEN-dec
        in_channels=3,
        out_channels=3,
        num_down=8,
        base_channels=64,
        norm_cfg=dict(threshold=1e-2, exchange_scope='any', sparsity='own'),
        dropout_layers=(1, 2, 3),
        ensemble_detach=True,
        # official (PyTorch 1.0): norm_init='uniform', bias_init='pytorch'
        norm_init='ones',
        bias_init='zeros',
        init_cfg=dict(type='normal', gain=0.02)),
    # the fusion base's PatchGAN; in_channels set per flow:
    # cat(condition, output)
    discriminator=dict(_base_.model.discriminator, in_channels=None),
    loss_config=dict(pixel_loss_weight=100.0),
    slim_loss_weight=0.,
    test_mode_train=True)
