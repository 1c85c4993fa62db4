"""``python -m sgdlab``: which libsgdlab is loaded, from where, and its version."""
import sgdlab

info = sgdlab.library_info()
print('sgdlab %s (package) with libsgdlab %s' % (sgdlab.__version__, info.version))
print('loaded from %s (found by: %s)' % (info.path, info.found_by))
for r in info.rejected:
    print('not used: %s' % r)
