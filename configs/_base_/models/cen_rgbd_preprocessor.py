# CEN's RGB-D data preprocessor under a key no mmseg config defines, so this
# file sits beside a full mmseg config in `_base_`; use it as
#   model = dict(data_preprocessor=dict(_delete_=True,
#                                       **_base_.cen_rgbd_preprocessor))
# Stacked [B, G, R, d, d, d] inputs: BGR -> RGB for the colour image,
# ImageNet mean/std on RGB and raw depth x 1/5000 (official CEN), 500x500
# training crops padded with 0 (labels with 255).
cen_rgbd_preprocessor = dict(
    type='CENSegDataPreProcessor',
    stream_channels=(3, 3),
    mean=[123.675, 116.28, 103.53, 0., 0., 0.],
    std=[58.395, 57.12, 57.375, 5000., 5000., 5000.],
    bgr_to_rgb=(True, False),
    pad_val=0,
    seg_pad_val=255,
    size=(500, 500))
