"""Everything between a dataset folder and a batch of tensors: scan, buckets, images, captions, caches.

Import from the submodules. This file imports none of them, so that checking a dataset from the page (scan,
buckets, images, captions: no torch) does not load torch, which costs the app's start about 1.7 s.
"""
