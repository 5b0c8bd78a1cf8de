# Copyright (c) cen_mm contributors. All rights reserved.
from .gamma_sparsity_hook import GammaSparsityHook

__all__ = ['GammaSparsityHook']
