# Copyright (c) cen_mm contributors. All rights reserved.
"""2-process DDP on CPU (gloo) with the CEN segmentation demo model gives the
same losses and the same γ as one process on the same global batch."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
ENGINE_TESTS = ROOT / 'tests' / 'test_engine'  # CENToyRecordHook lives there

CONFIG = """
_base_ = [{base!r}]
custom_imports = dict(imports=['cen_mm.seg', 'cen_engine_toy'],
                      allow_failed_imports=False)
# frozen BN statistics (official) and no dropout: every rank then computes
# exactly what the single process computes for its half of the batch
model = dict(
    backbone=dict(norm_eval=True),
    decode_head=dict(feat_dropout_ratio=0., dropout_ratio=0.))
_pipeline = [
    dict(type='LoadRGBDFromFile'),
    dict(type='LoadRGBDAnnotations', num_classes=5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(data_root={data!r},
                 generate=dict(num_train=4, num_val=2, size=96, seed=0),
                 pipeline=_pipeline))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
param_scheduler = []
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(_delete_=True, type='CheckpointHook', interval=100),
    visualization=dict(type='SegVisualizationHook', draw=False))
custom_hooks = [
    dict(type='GammaSparsityHook', lam=6e-4, interval=1),
    dict(type='CENToyRecordHook')
]
"""


def free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def train(cfg_path: Path, work_dir: Path, nproc: int) -> None:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(ENGINE_TESTS), str(ROOT), env.get('PYTHONPATH', '')])
    env.update(PYTHON=sys.executable, OMP_NUM_THREADS='1', PORT=free_port())
    if nproc > 1:
        cmd = ['bash', 'tools/dist_train.sh', str(cfg_path), str(nproc)]
    else:
        cmd = [sys.executable, 'tools/train.py', str(cfg_path)]
    done = subprocess.run(cmd + ['--work-dir', str(work_dir)], cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason='tests the CPU/gloo path; with CUDA the stock launcher is used')
def test_two_process_gloo_matches_single_process(tmp_path):
    base = ROOT / 'configs/cen/cen-refinenet_r50_synthetic-rgbd.py'
    data = tmp_path / 'synthetic_rgbd'
    runs = {}
    for name, batch, nproc in (('single', 2, 1), ('ddp', 1, 2)):
        cfg = tmp_path / f'{name}.py'
        cfg.write_text(CONFIG.format(base=str(base), batch=batch,
                                     data=str(data)))
        train(cfg, tmp_path / name, nproc)
        runs[name] = [
            torch.load(str(tmp_path / name / f'record_rank{r}.pth'))
            for r in range(nproc)
        ]
    single, (rank0, rank1) = runs['single'][0], runs['ddp']
    assert rank0['world_size'] == 2 and single['world_size'] == 1
    assert len(single['losses']) == 2
    # the mean over ranks of the per-rank losses is the global-batch loss
    torch.testing.assert_close((rank0['losses'] + rank1['losses']) / 2,
                               single['losses'], atol=1e-5, rtol=0)
    # stem + 3 per bottleneck (16) + 4 downsample norms of CEN ResNet-50
    assert len(single['gammas']) == 1 + 3 * 16 + 4
    for name, gamma in single['gammas'].items():
        assert torch.equal(rank0['gammas'][name], rank1['gammas'][name])
        torch.testing.assert_close(rank0['gammas'][name], gamma, atol=1e-5,
                                   rtol=0)
