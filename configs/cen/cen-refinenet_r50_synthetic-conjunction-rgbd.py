# The main demo (tools/demo.sh): CEN RefineNet on synthetic RGB-D scenes
# whose classes need colour AND distance, where CEN beats both its single
# streams and the no-exchange variant in a few CPU minutes.
#
# Data (SyntheticConjunctionRGBDDataset, generated on first use into
# data/synthetic_conjunction_rgbd): flat red or blue plates, near
# (1.2-1.8 m) or far (2.4-3.0 m), on a textured grey wall; classes
# red_near / blue_far / mixed (red far or blue near) + background. Colour is
# only in RGB and distance only in depth, so each stream on its own sees one
# cue, and a late fusion of independent streams ties between two classes on
# half of the objects; a stream that gets the other stream's channels can
# separate all four.
#
# Model and schedule: the demo's (CEN ResNet-50 + RefineNet at 1/4 width,
# staged SGD at 64 px), trained twice as long as the base (80 epochs = 640
# iterations, stages 40 + 20 + 20): at the base's 320 iterations the result
# hung on the seed and even on the machine's floating-point rounding (ens
# mIoU 62-86 for one seed), at 640 every seed and thread count tried lands
# at 80-90, above both streams (docs/ablations.md, "The main demo"). Three
# more changes make a short from-scratch run behave like the official long
# one:
# - backbone BN γ drawn from U(0, 1) (PyTorch 1.0's default, the official
#   environment) instead of all 1.0, so the L1 term pushes only the weakest
#   penalised γ below θ instead of all of them at the same iteration;
# - λ = 5e-3 (the paper's value): about a quarter of the penalised γ end
#   below θ, so the streams exchange some channels but stay distinct;
# - no decoder dropout (at 16 channels it only slows learning down) and
#   gradients clipped at norm 10 (exchange can diverge in the first
#   iterations at this learning rate).
_base_ = ['./cen-refinenet_r50_synthetic-rgbd.py']
crop_size = (64, 64)
num_classes = 4
dataset_type = 'SyntheticConjunctionRGBDDataset'
data_root = 'data/synthetic_conjunction_rgbd'
generate = dict(
    num_train=60, num_val=20, size=64, seed=0, depth_cue='distance')
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=[
        dict(type='Kaiming', layer='Conv2d'),
        dict(type='Uniform', layer='_BatchNorm', a=0., b=1.)
    ]),
    decode_head=dict(
        num_classes=num_classes, feat_dropout_ratio=0., dropout_ratio=0.))
optim_wrapper = dict(clip_grad=dict(_delete_=True, max_norm=10))
# The base's pipelines (and its 3-scale + flip TTA) at 64 px without the
# random rescale (labels checked against the dataset's class count, as in
# every RGB-D pipeline).
train_pipeline = [
    *_base_.rgbd_data.train_pipeline[:2],
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    *_base_.rgbd_data.train_pipeline[4:]
]
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=generate,
        pipeline=train_pipeline))
val_dataloader = test_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, generate=generate))
param_scheduler = [dict(_base_.param_scheduler[0], milestones=[40, 60])]
train_cfg = dict(max_epochs=80, val_interval=80)
custom_hooks = [dict(type='GammaSparsityHook', lam=5e-3, interval=8)]
