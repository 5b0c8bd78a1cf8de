# Procedural indoor scenes in the Taskonomy layout (embedded demo data):
# render them first with
#   python tools/misc/generate_synthetic_scenes.py data/synthetic_scenes
# (40 train / 10 val views, 256x256, seed 0; a few seconds on a CPU).
# Domains: rgb, normal, reshading, depth_zbuffer, depth_euclidean,
# edge_texture, edge_occlusion, segment_semantic.
_base_ = ['./taskonomy_256x256.py']

data_root = 'data/synthetic_scenes'

train_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, ann_file='train.txt'))
val_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, ann_file='val.txt'))
test_dataloader = val_dataloader
