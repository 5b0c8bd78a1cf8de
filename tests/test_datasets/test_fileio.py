# Copyright (c) cen_mm contributors. All rights reserved.
"""atomic_output_dir: all or nothing, old content kept until replaced."""
import pytest

from cen_mm.datasets import atomic_output_dir


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_creates_on_success_and_refuses_existing(tmp_path):
    out = tmp_path / 'out'
    with atomic_output_dir(str(out)) as tmp:
        (tmp_path / 'out').exists() and pytest.fail('visible too early')
        with open(f'{tmp}/a.txt', 'w') as f:
            f.write('1')
    assert (out / 'a.txt').read_text() == '1'
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)
    assert _names(tmp_path) == ['out']
    with pytest.raises(FileExistsError, match=r'out exists .*overwrite'):
        with atomic_output_dir(str(out)):
            pytest.fail('must not be entered')


def test_an_empty_folder_counts_as_absent(tmp_path):
    (tmp_path / 'out').mkdir()
    with atomic_output_dir(str(tmp_path / 'out')) as tmp:
        with open(f'{tmp}/a.txt', 'w') as f:
            f.write('1')
    assert _names(tmp_path / 'out') == ['a.txt']


def test_failure_leaves_nothing_and_keeps_old_content(tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(RuntimeError):
        with atomic_output_dir(str(out)) as tmp:
            with open(f'{tmp}/a.txt', 'w') as f:
                f.write('1')
            raise RuntimeError
    assert _names(tmp_path) == []
    out.mkdir()
    (out / 'old.txt').write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_output_dir(str(out), overwrite=True) as tmp:
            raise RuntimeError
    assert _names(tmp_path) == ['out'] and _names(out) == ['old.txt']
    with atomic_output_dir(str(out), overwrite=True) as tmp:
        with open(f'{tmp}/new.txt', 'w') as f:
            f.write('new')
        assert _names(out) == ['old.txt']  # still there while writing
    assert _names(tmp_path) == ['out'] and _names(out) == ['new.txt']


def test_a_concurrent_writer_that_finished_first_wins(tmp_path):
    out = tmp_path / 'out'
    with atomic_output_dir(str(out)) as tmp:
        with open(f'{tmp}/mine.txt', 'w') as f:
            f.write('mine')
        out.mkdir()  # another rank completed the same data meanwhile
        (out / 'theirs.txt').write_text('theirs')
    assert _names(out) == ['theirs.txt']
    assert _names(tmp_path) == ['out']
