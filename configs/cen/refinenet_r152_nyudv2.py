# Short name of cen-refinenet_r152_1xb6-450e_nyudv2-rgbd-500x500.py.
_base_ = ['./cen-refinenet_r152_1xb6-450e_nyudv2-rgbd-500x500.py']
