# Copyright (c) cen_mm contributors. All rights reserved.
"""Convert the official NYU Depth V2 labelled set to the cen_mm layout.

Inputs:

- ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5). MATLAB stores arrays
  column-major and h5py shows the dimensions reversed, so the datasets read
  as ``images`` (N, 3, W, H) uint8 RGB, ``depths`` / ``rawDepths`` (N, W, H)
  float metres and ``labels`` (N, W, H) uint16 ids of the 894 NYU classes
  (0 = unlabelled). Frame ``i`` is therefore ``images[i].transpose(2, 1, 0)``
  (H, W, 3) and ``labels[i].T`` (H, W).
- The 894 -> 40 class mapping of Gupta et al.: ``classMapping40.mat`` with
  the variable ``mapClass`` (1 x 894, values 1..40), or a ``.npy`` / text
  file with the same numbers (entry ``k`` for 894-class id ``k + 1``). A
  list of 895 entries is read as indexed by the raw id (entry 0 must be 0).
  A value of 0 maps to void.
- The official split ``splits.mat`` (``trainNdxs`` 795 and ``testNdxs``
  654, 1-based frame numbers), or two text files with one 1-based frame
  number per line (``--train-list`` and ``--test-list``).

Output (``-o``, default ``data/nyudv2``), read by ``NYUDv2RGBDDataset``::

    rgb/{train,test}/000001.png    RGB, 8 bit
    depth/{train,test}/000001.png  uint16, metres x 5000, 0 = no reading
                                   (raw Kinect depth by default, as the
                                   official CEN data; --depth-key depths
                                   for the in-painted depth)
    label/{train,test}/000001.png  uint8, 0..39 (wall..otherprop), 255 void
    train.txt, test.txt            stems, one per line

File stems are the 1-based frame number, zero-padded to 6 digits.

Example::

    python tools/dataset_converters/nyudv2.py nyu_depth_v2_labeled.mat \
        --mapping classMapping40.mat --splits splits.mat -o data/nyudv2
"""
import argparse
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

DEPTH_SCALE = 5000  # uint16 units per metre
IGNORE_INDEX = 255
NUM_CLASSES = 40


def _load_mat_variable(path: str,
                       names: Sequence[str]) -> Dict[str, np.ndarray]:
    """Read variables from a .mat file (v5 via scipy, v7.3 via h5py)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        loadmat = None
    if loadmat is not None:
        try:
            data = loadmat(path)
            return {name: np.asarray(data[name]) for name in names
                    if name in data}
        except (NotImplementedError, ValueError):
            pass  # v7.3 files are HDF5, which scipy refuses
    import h5py
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        hint = '' if loadmat else ' (MATLAB v5 files need scipy)'
        raise OSError(f'cannot read {path} as a .mat file{hint}') from e
    # h5py shows MATLAB arrays transposed; irrelevant for the vectors read.
    with f:
        return {name: np.asarray(f[name]) for name in names if name in f}


def load_class_mapping(path: str) -> np.ndarray:
    """Build a lookup table from raw NYU class ids to 0..39 / 255.

    Args:
        path (str): ``.mat`` (variable ``mapClass``), ``.npy`` or text file.

    Returns:
        np.ndarray: uint8 table of length 65536; ``table[raw_id]`` is the
        0-based 40-class label or 255.
    """
    if path.endswith('.mat'):
        data = _load_mat_variable(path, ['mapClass'])
        if 'mapClass' not in data:
            raise KeyError(f'{path} has no variable "mapClass"')
        mapping = data['mapClass']
    elif path.endswith('.npy'):
        mapping = np.load(path)
    else:
        with open(path) as f:
            mapping = np.array(f.read().replace(',', ' ').split(), dtype=float)
    mapping = np.asarray(mapping).reshape(-1)
    if not np.all(np.isfinite(mapping)) or np.any(mapping != np.round(mapping)):
        raise ValueError(f'class mapping {path} must hold integers')
    mapping = mapping.astype(np.int64)
    if mapping.min() < 0 or mapping.max() > NUM_CLASSES:
        raise ValueError(
            f'class mapping {path} has values outside 0..{NUM_CLASSES} '
            f'(min {mapping.min()}, max {mapping.max()})')
    if len(mapping) == 894:
        mapping = np.concatenate([[0], mapping])
    elif len(mapping) == 895:
        if mapping[0] != 0:
            raise ValueError(f'class mapping {path} has 895 entries indexed '
                             'by raw id, so entry 0 (unlabelled) must be 0')
    else:
        raise ValueError(f'class mapping {path} must have 894 entries (raw '
                         f'ids 1..894), got {len(mapping)}')
    table = np.full(65536, IGNORE_INDEX, dtype=np.uint8)
    known = mapping > 0
    table[np.nonzero(known)[0]] = mapping[known] - 1
    # Ids beyond the mapping are flagged so that conversion can refuse them.
    table[len(mapping):] = 254
    return table


def load_splits(splits: Optional[str] = None,
                train_list: Optional[str] = None,
                test_list: Optional[str] = None,
                num_frames: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Read the train/test split as 0-based frame indices.

    Args:
        splits (str, optional): ``splits.mat`` with ``trainNdxs`` and
            ``testNdxs`` (1-based).
        train_list (str, optional): Text file, one 1-based index per line.
        test_list (str, optional): Same for the test split.
        num_frames (int, optional): Number of frames, to check the range.

    Returns:
        dict: ``train`` and ``test`` arrays of 0-based indices.
    """
    if splits is not None:
        data = _load_mat_variable(splits, ['trainNdxs', 'testNdxs'])
        missing = {'trainNdxs', 'testNdxs'} - set(data)
        if missing:
            raise KeyError(f'{splits} lacks {sorted(missing)}')
        one_based = dict(train=data['trainNdxs'], test=data['testNdxs'])
    elif train_list is not None and test_list is not None:
        one_based = {
            name: np.loadtxt(path, dtype=np.int64, ndmin=1)
            for name, path in (('train', train_list), ('test', test_list))
        }
    else:
        raise ValueError('give --splits, or both --train-list and '
                         '--test-list')
    out = {}
    for name, idx in one_based.items():
        idx = np.asarray(idx).reshape(-1).astype(np.int64)
        upper = num_frames if num_frames is not None else np.inf
        if idx.size == 0 or idx.min() < 1 or idx.max() > upper:
            raise ValueError(
                f'{name} split indices must be 1-based frame numbers in '
                f'1..{num_frames}, got range {idx.min()}..{idx.max()}')
        out[name] = idx - 1
    if np.intersect1d(out['train'], out['test']).size:
        raise ValueError('train and test splits overlap')
    return out


def convert_nyudv2(mat_path: str,
                   mapping: str,
                   out_dir: str,
                   splits: Optional[str] = None,
                   train_list: Optional[str] = None,
                   test_list: Optional[str] = None,
                   depth_key: str = 'rawDepths') -> Dict[str, int]:
    """Convert ``nyu_depth_v2_labeled.mat`` to the cen_mm layout.

    Args:
        mat_path (str): Path of ``nyu_depth_v2_labeled.mat``.
        mapping (str): 894 -> 40 class mapping file.
        out_dir (str): Output ``data_root``.
        splits (str, optional): ``splits.mat``.
        train_list (str, optional): Text split file (1-based indices).
        test_list (str, optional): Text split file (1-based indices).
        depth_key (str): ``rawDepths`` (Kinect readings with holes, 0 where
            missing, like the official CEN data release behind the paper's
            numbers) or ``depths`` (in-painted, dense). Defaults to
            'rawDepths'.

    Returns:
        dict: Number of frames written per split.
    """
    import h5py
    table = load_class_mapping(mapping)
    with h5py.File(mat_path, 'r') as f:
        for key in ('images', depth_key, 'labels'):
            if key not in f:
                raise KeyError(f'{mat_path} has no dataset {key!r} (keys: '
                               f'{sorted(f.keys())})')
        images, depths, labels = f['images'], f[depth_key], f['labels']
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f'{mat_path}: images must be (N, 3, W, H), got '
                             f'{images.shape}')
        n, _, w, h = images.shape
        for key, ds in ((depth_key, depths), ('labels', labels)):
            if ds.shape != (n, w, h):
                raise ValueError(f'{mat_path}: {key} must be {(n, w, h)} '
                                 f'(N, W, H) like images, got {ds.shape}')
        split_idx = load_splits(splits, train_list, test_list, num_frames=n)
        counts = {}
        for split, indices in split_idx.items():
            for kind in ('rgb', 'depth', 'label'):
                os.makedirs(osp.join(out_dir, kind, split), exist_ok=True)
            stems = []
            for i in indices:
                stem = f'{i + 1:06d}'
                rgb = np.ascontiguousarray(images[i].transpose(2, 1, 0))
                depth_m = np.asarray(depths[i], dtype=np.float64).T
                raw = np.asarray(labels[i]).T.astype(np.int64)
                label = table[raw]
                if (label == 254).any():
                    raise ValueError(
                        f'{mat_path}: frame {i + 1} has class ids up to '
                        f'{raw.max()} that the mapping {mapping} does not '
                        'cover')
                depth_m = np.where(np.isfinite(depth_m), depth_m, 0)
                depth = np.clip(np.round(depth_m * DEPTH_SCALE), 0, 65535)
                cv2.imwrite(
                    osp.join(out_dir, 'rgb', split, stem + '.png'),
                    rgb[..., ::-1])
                cv2.imwrite(
                    osp.join(out_dir, 'depth', split, stem + '.png'),
                    depth.astype(np.uint16))
                cv2.imwrite(
                    osp.join(out_dir, 'label', split, stem + '.png'), label)
                stems.append(stem)
            with open(osp.join(out_dir, f'{split}.txt'), 'w') as fh:
                fh.write('\n'.join(stems) + '\n')
            counts[split] = len(stems)
    return counts


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert nyu_depth_v2_labeled.mat to the cen_mm '
        'RGB-D segmentation layout (40 classes).')
    parser.add_argument('mat', help='nyu_depth_v2_labeled.mat')
    parser.add_argument(
        '--mapping',
        required=True,
        help='894->40 class mapping: classMapping40.mat (mapClass), .npy or '
        'text')
    parser.add_argument('--splits', help='splits.mat (trainNdxs/testNdxs)')
    parser.add_argument('--train-list', help='text file of 1-based indices')
    parser.add_argument('--test-list', help='text file of 1-based indices')
    parser.add_argument(
        '--depth-key',
        default='rawDepths',
        choices=['rawDepths', 'depths'],
        help='raw Kinect depths with holes = 0 (default; the official CEN '
        'data) or the in-painted dense depths')
    parser.add_argument('-o', '--out-dir', default='data/nyudv2')
    return parser.parse_args()


def main():
    args = parse_args()
    counts = convert_nyudv2(
        args.mat,
        args.mapping,
        args.out_dir,
        splits=args.splits,
        train_list=args.train_list,
        test_list=args.test_list,
        depth_key=args.depth_key)
    print(f'wrote {counts} frames to {args.out_dir}')


if __name__ == '__main__':
    main()
