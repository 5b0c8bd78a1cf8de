from setuptools import find_packages, setup

setup(
    name='cen_mm',
    version='0.1.0',
    description='Channel-Exchanging Networks (CEN) for MMSegmentation and MMagic',
    packages=find_packages(include=['cen_mm', 'cen_mm.*']),
    # built on first use by cen_mm.cnn.row_kernel
    package_data={'cen_mm.cnn': ['csrc/*.c', 'csrc/*.cpp']},
    python_requires='>=3.8',
    install_requires=[
        'torch', 'ninja', 'mmengine>=0.10', 'mmcv>=2.0.0rc4,<2.2.0'
    ],
    extras_require={
        'seg': ['mmsegmentation>=1.0', 'ftfy', 'regex'],
        'agic': ['mmagic>=1.0'],
        'tests': ['pytest', 'h5py', 'scipy'],
    },
)
