# CEN Pix2Pix: U-Net-256 generator with shared convs, per-stream exchanging
# INs and a softmax ensemble; a shared 70x70 PatchGAN discriminator on
# (source_m, output_m); official CEN image-translation settings.
# Children set `model.source_domains` / `model.target_domain`.
custom_imports = dict(
    imports=['cen_mm.gen', 'cen_mm.engine'], allow_failed_imports=False)

model = dict(
    type='CENPix2Pix',
    source_domains=None,  # set by user, e.g. ['reshading', 'edge_texture']
    target_domain='rgb',
    # images -> [-1, 1] (official Normalize(0.5, 0.5))
    data_preprocessor=dict(type='DataPreprocessor', data_keys=None),
    generator=dict(
        type='CENUnetGenerator',
        in_channels=3,
        out_channels=3,
        # num_streams defaults to len(source_domains)
        num_down=8,
        base_channels=64,
        norm_cfg=dict(
            type='ExchangeIN',
            threshold=1e-2,  # θ
            exchange_scope='any',  # official; 'own' = paper's sub-parts
            sparsity='own'),  # L1 on disjoint parts (official halves)
        exchange_layers=None,  # all encoder INs: conv2..conv7 (official)
        penalised_layers=None,  # all encoder INs (official "all 8")
        decoder_norm='stream',  # official; 'shared' = paper's text
        dropout_layers=(1, 2, 3),
        ensemble_detach=True,
        # official (PyTorch 1.0): norm_init='uniform', bias_init='pytorch'
        norm_init='ones',
        bias_init='zeros',
        init_cfg=dict(type='normal', gain=0.02)),
    discriminator=dict(
        type='CENPatchDiscriminator',  # mmagic's PatchDiscriminator + init
        in_channels=6,  # cat(source_m, output_m)
        base_channels=64,
        num_conv=3,
        norm_cfg=dict(type='IN', affine=True, track_running_stats=True),
        # official (PyTorch 1.0): norm_init='uniform', bias_init='pytorch'
        norm_init='ones',
        bias_init='zeros',
        init_cfg=dict(type='normal', gain=0.02)),
    loss_config=dict(pixel_loss_weight=100.0),
    # L1 on γ: the GammaSparsityHook below (default); for the official
    # loss-term form set slim_loss_weight=1e-3 and remove the hook.
    slim_loss_weight=0.,
    # official: the generator stays in train mode at val/test
    test_mode_train=True)

optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generators=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))),
    discriminators=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))))

# λ = 1e-3 (paper and official translation code)
custom_hooks = [dict(type='GammaSparsityHook', lam=1e-3, interval=100)]
