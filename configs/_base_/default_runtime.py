# Runtime shared by the cen_mm segmentation configs: mmseg's defaults with
# epoch-based logging (the CEN schedules count epochs), no cudnn benchmark,
# the visualiser that also draws each stream's prediction, and the
# multi-scale + flip test (`--tta`) averaging the ensemble and the stream
# logits alike.
_base_ = 'mmseg::_base_/default_runtime.py'
env_cfg = dict(cudnn_benchmark=False)
visualizer = dict(type='CENSegLocalVisualizer')
log_processor = dict(by_epoch=True)
tta_model = dict(type='CENSegTTAModel')
