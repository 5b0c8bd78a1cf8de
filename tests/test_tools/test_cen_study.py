# Copyright (c) cen_mm contributors. All rights reserved.
"""tools/cen_study.py: exchange statistics and the summary table."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from cen_mm.cnn import ExchangeBN

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def study():
    spec = importlib.util.spec_from_file_location(
        'cen_study_under_test', REPO / 'tools' / 'cen_study.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _TwoStreamNet(nn.Module):
    stream_names = ('rgb', 'depth')

    def __init__(self, **norm_kwargs):
        super().__init__()
        self.a = ExchangeBN(8, **norm_kwargs)
        self.b = ExchangeBN(4, exchange=False, sparsity='none')  # skipped
        with torch.no_grad():
            self.a.streams[0].weight.fill_(1.)
            self.a.streams[1].weight.fill_(1.)
            # stream 0 penalises [0:4], stream 1 [4:8] ('own')
            self.a.streams[0].weight[[0, 1, 6]] = 1e-3  # 6: not penalised
            self.a.streams[1].weight[5] = -1e-3


def test_exchange_summary_counts(study):
    stats = study.exchange_summary(_TwoStreamNet())
    # penalised below θ: stream 0 channels 0, 1; stream 1 channel 5 -> 3/8
    assert stats['gamma_below_thr'] == pytest.approx(3 / 8)
    # exchanged: any channel below θ (official scope 'any'): 0, 1, 6 / 5
    assert stats['exchanged_rgb'] == pytest.approx(3 / 8)
    assert stats['exchanged_depth'] == pytest.approx(1 / 8)
    none = study.exchange_summary(_TwoStreamNet(exchange_mode='none'))
    assert none['gamma_below_thr'] == pytest.approx(3 / 8)
    assert none['exchanged_rgb'] == none['exchanged_depth'] == 0


def test_summary_mean_and_spread(study):
    records = [
        dict(variant='cen', seed=s, params=2e6, fusion_params=0,
             metrics={'mIoU': v}, exchange={'gamma_below_thr': 0.25})
        for s, v in enumerate((80., 84., 88.))
    ] + [dict(variant='concat', seed=0, params=3e6, fusion_params=5e5,
              metrics={'mIoU': 70.})]
    table = study.summarise(records, ['mIoU']).splitlines()
    assert table[2] == ('| cen | 3 | 84.00 ± 4.00 | 2.00 | 0.000 | '
                        'γ<θ 25 % |')
    assert table[3] == '| concat | 1 | 70.00 | 3.00 | 0.500 | - |'


def test_table1_overrides_match_their_row(study):
    """Each Table-1 variant's overrides say what its row says (convs, L1,
    exchange): no override may drop another when they are combined."""
    modes = {'-': 'none', 'yes': 'threshold', 'fixed 30%': 'fixed',
             'random 30%': 'random', 'discard': 'discard'}
    l1 = {'-': 'none', 'half': 'own', 'all': 'all'}
    for name, (convs, bns, sparsity, exchange, cfg) in \
            study.SEG_TABLE1.items():
        model = cfg.get('model', {})
        assert model.get('share_convs', True) == (convs == 'shared'), name
        assert model.get('share_norms', False) == (bns == 'shared'), name
        ex = model.get('backbone', {}).get('exchange_cfg', {})
        assert ex.get('exchange_mode', 'threshold') == modes[exchange], name
        assert ex.get('sparsity', 'own') == l1[sparsity], name
        assert ('custom_hooks' in cfg) == (sparsity == '-'), name


def test_table2_variants_cover_every_position(study):
    """'{approach}-{position}' fuses with that block at that position, in
    the baselines' setting (no exchange, no L1); 'align-mmd-middle' is
    align without its branches."""
    none = dict(exchange_mode='none', sparsity='none')
    for approach, kind in study.SEG_FUSION_KINDS.items():
        for position in ('early', 'middle', 'late', 'all'):
            cfg = study.SEG_TABLE2[f'{approach}-{position}']
            assert cfg['model']['fusion'] == dict(type=kind,
                                                  positions=position)
            assert cfg['model']['backbone']['exchange_cfg'] == none
            assert cfg['custom_hooks'] == []
    assert study.SEG_TABLE2['align-mmd-middle']['model']['fusion'] == dict(
        type='AlignFusion', positions='middle', branches=False)
    assert len(study.SEG_TABLE2) == 13


def test_table4_variants_and_align_params(study, tmp_path):
    """Each translation baseline is a FusionUnetGenerator at the middle
    (4th) conv without exchange or L1; align-middle builds from the study
    config and its fusion params are 10 C² (C = 256 at the 4th conv)."""
    kinds = {'concat-middle': 'ConcatFusion', 'align-middle': 'AlignFusion',
             'average-middle': 'AverageFusion',
             'self-att-middle': 'SSMAFusion'}
    assert list(study.GEN_TABLE4) == ['cen'] + list(kinds)
    for name, kind in kinds.items():
        cfg = study.GEN_TABLE4[name]
        assert cfg['custom_hooks'] == []
        gen = cfg['model']['generator']
        assert gen['type'] == 'FusionUnetGenerator'
        assert gen['fusion'] == dict(type=kind, positions='middle')
        assert gen['norm_cfg'] == dict(type='ExchangeIN', exchange_mode='none',
                                       sparsity='none')
    counts = {
        name: study.build_only(study.variant_config(
            study.GEN_CONFIG, study.GEN_TABLE4[name], 0,
            str(tmp_path / name), {}))
        for name in ('cen', 'align-middle')
    }
    assert counts['cen']['fusion_params'] == 0
    assert counts['align-middle']['fusion_params'] == 10 * 256**2
    assert counts['align-middle']['params'] == \
        counts['cen']['params'] + 10 * 256**2


GEN_SOURCES = ('reshading', 'edge_texture')


def _scenes(root):
    from cen_mm.datasets import write_synthetic_taskonomy
    write_synthetic_taskonomy(str(root), num_train=4, num_val=2, size=32,
                              seed=0, domains=('rgb', ) + GEN_SOURCES)
    return str(root)


def test_gen_study_records_every_stream_and_resumes(study, tmp_path,
                                                    monkeypatch, capsys):
    """The translation study end to end (a tiny U-Net, 2 iterations):
    mmagic's MultiTestLoop returns no metrics, the study must still record
    MAE / MSE of the ensemble and of each stream, the exchange statistics,
    and print them with the no-input baseline; a rerun skips what is done."""
    data_root = _scenes(tmp_path / 'scenes')
    out = tmp_path / 'gen.jsonl'
    options = [
        f'{loader}.{key}' for loader in
        ('train_dataloader', 'val_dataloader', 'test_dataloader')
        for key in (f'dataset.data_root={data_root}', 'batch_size=2',
                    'num_workers=0', 'persistent_workers=False')
    ] + ['model.generator.base_channels=8',
         'model.discriminator.base_channels=8', 'train_cfg.max_iters=2',
         'train_cfg.val_interval=2', 'log_level=WARNING']
    argv = ['cen_study.py', 'gen', '--variants', 'cen', '--out', str(out),
            '--work-dir', str(tmp_path / 'work'), '--cfg-options', *options]
    monkeypatch.setattr('sys.argv', argv)
    study.main()
    record, = [json.loads(line) for line in out.read_text().splitlines()]
    keys = {f'{p}/{m}' for p in ('ens', ) + GEN_SOURCES
            for m in ('MAE', 'MSE')}
    assert set(record['metrics']) == keys
    assert all(0 < v < 100 for v in record['metrics'].values())
    assert set(record['exchange']) == {
        'gamma_below_thr', 'exchanged_reshading', 'exchanged_edge_texture'}
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines()
                  if line.startswith('| variant')).split(' | ')
    assert header[2:8] == ['edge_texture/MAE', 'edge_texture/MSE',
                           'reshading/MAE', 'reshading/MSE', 'ens/MAE',
                           'ens/MSE']
    assert 'no input (per-pixel mean of the training targets)' in printed
    study.main()  # resumes: nothing left to run
    assert len(out.read_text().splitlines()) == 1


def test_mean_target_baseline_matches_direct_computation(study, tmp_path):
    from PIL import Image

    data_root = _scenes(tmp_path / 'scenes')
    cfg = study.variant_config(
        study.GEN_CONFIG, {}, 0, str(tmp_path / 'work'),
        {f'{loader}.dataset.data_root': data_root
         for loader in ('train_dataloader', 'test_dataloader')})
    baseline = study.mean_target_baseline(cfg)

    def rgb(split):
        names = (Path(data_root) / f'{split}.txt').read_text().split()
        return np.stack([
            np.asarray(Image.open(
                Path(data_root) / 'rgb' / f'{name}_domain_rgb.png').convert(
                    'RGB').resize((64, 64), Image.BILINEAR), np.float64) /
            255 for name in names
        ])

    error = rgb('val') - rgb('train').mean(0)
    assert baseline['MAE'] == pytest.approx(
        100 * np.abs(error).mean((1, 2, 3)).mean(), abs=1e-9)
    assert baseline['MSE'] == pytest.approx(
        100 * (error**2).mean((1, 2, 3)).mean(), abs=1e-9)
    # a real gap: the mean image is not the data
    assert baseline['MAE'] > 1
