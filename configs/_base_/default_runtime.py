# Runtime shared by the cen_mm segmentation configs (mmseg defaults, with
# epoch-based logging for the epoch-based CEN schedules).
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='CENSegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
# Multi-scale + flip test (`--tta`); it averages the ensemble and stream
# logits alike.
tta_model = dict(type='CENSegTTAModel')
