# Copyright (c) cen_mm contributors. All rights reserved.
"""tools/cen_study.py: exchange statistics and the summary table."""
import importlib.util
from pathlib import Path

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
