"""Model, Dataset, Loader and Idx."""
import gzip
import struct

import numpy as np
import pytest

import sgdlab
from conftest import expect, spirals


def test_model_from_spec_and_queries():
    with sgdlab.Model('2-8-tanh-3:seed=3') as m:
        assert m.spec == '2-8-tanh-3:loss=cross_entropy'
        assert (m.num_inputs, m.num_outputs, m.num_params) == (2, 3, 2 * 8 + 8 + 8 * 3 + 3)
        assert m.layers == ['dense', 'tanh', 'dense']
        assert m.loss == 'cross_entropy'
        names = [p.name for p in m.param_info()]
        assert names == ['0.weight', '2.weight', '0.bias', '2.bias']
        assert m.find_param('2.bias') == 3
        expect(sgdlab.NotFoundError, '9.bias', m.find_param, '9.bias')
        sd = m.state_dict()
        assert sd['0.weight'].shape == (8, 2) and sd['2.bias'].shape == (3,)
        # Views are zero-copy: writing one changes the arena.
        sd['2.bias'][:] = 7
        assert np.all(m.params[-3:] == 7)
        assert m.training and not m.eval().training and m.train().training
    assert m.closed
    expect(sgdlab.StateError, 'closed', lambda: m.spec)


def test_model_keywords_and_builder():
    m = sgdlab.Model('2-4-1', loss='mse', seed=5, max_batch=16)
    assert m.loss == 'mse' and m.max_batch == 16
    m.reserve(64)
    assert m.max_batch == 64
    expect(sgdlab.InvalidArgumentError, "loss='nope'", sgdlab.Model, '2-4-1', loss='nope')
    b = sgdlab.Model.builder(3).dense(5).relu().leaky_relu(0.1).dropout(0.2).dense(2, bias=False)
    m2 = b.build(seed=1)
    assert m2.layers == ['dense', 'relu', 'leaky_relu', 'dropout', 'dense']
    expect(sgdlab.InvalidArgumentError, 'built its model already', b.dense, 3)
    expect(sgdlab.InvalidArgumentError, 'activation', sgdlab.Model.builder(2).activation, 'swish')
    m2.set_blas_threads(0)
    m2.loss = 'mse'
    assert m2.loss == 'mse'


def test_views_outlive_close():
    m = sgdlab.Model('2-4-3')
    p = m.params
    before = p.copy()
    m.close()
    # The arena stays valid as long as the view lives.
    assert np.array_equal(p, before)
    del p


def test_forward_backward_and_training():
    x, y = spirals(200)
    m = sgdlab.Model('2-32-tanh-3:seed=1')
    out = m.forward(x[:10])
    assert out.shape == (10, 3)
    loss0 = m.compute_loss(y[:10])
    m.zero_grad()
    m.backward()
    g1 = m.grads.copy()
    m.zero_grad()
    assert m.forward_backward(x[:10], y[:10]) == pytest.approx(loss0)
    assert np.allclose(m.grads, g1)
    # Gradient from the host's own loss.
    m.zero_grad()
    m.forward(x[:10])
    m.backward(np.ones((10, 3), np.float32))
    assert np.any(m.grads != 0)
    # A few steps of plain SGD through the views.
    opt = sgdlab.Optimizer('sgd:lr=0.5,momentum=0.9', m.num_params)
    d = sgdlab.Dataset(x, y)
    l_start, _ = m.evaluate(d)
    for _ in range(100):
        m.zero_grad()
        m.forward_backward(x, y)
        opt.step(m)
    l_end, acc = m.evaluate(d)
    assert l_end < l_start * 0.7 and acc > 0.5
    assert m.predict(x).shape == (200, 3) and m(x[:2]).shape == (2, 3)
    expect(sgdlab.ShapeError, 'the model takes [rows, 2]', m.forward, np.zeros((3, 5)))
    expect(sgdlab.InvalidArgumentError, 'label', m.forward_backward, x[:2], np.array([0, 9]))
    expect(sgdlab.NonFiniteError, 'sgd_model_forward', m.forward, np.array([[np.nan, 0]]))


def test_state_dict_round_trip_and_rng():
    a, b = sgdlab.Model('3-5-relu-2:seed=1'), sgdlab.Model('3-5-relu-2:seed=2')
    assert not np.array_equal(a.params, b.params)
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    assert np.array_equal(a.params, b.params)
    expect(sgdlab.NotFoundError, 'missing', b.load_state_dict, {'0.weight': np.zeros((5, 3))})
    expect(sgdlab.ShapeError, '0.weight', b.load_state_dict, {'0.weight': np.zeros((3, 5))}, strict=False)
    bad = a.get_params()
    bad[0] = np.inf
    expect(sgdlab.NonFiniteError, 'sgd_model_set_params', b.set_params, bad)
    assert np.array_equal(a.params, b.params)
    s = a.rng_state
    a.rng_state = (1, 2, 3, 4)
    assert a.rng_state == (1, 2, 3, 4)
    expect(sgdlab.InvalidArgumentError, 'sgd_model_set_rng_state', setattr, a, 'rng_state', (0, 0, 0, 0))
    a.reset(9)
    assert a.rng_state != s


def test_dataset_and_loader():
    x, y = spirals(50)
    d = sgdlab.Dataset(x, y)
    assert (len(d), d.dim, d.target_dim, d.num_classes) == (50, 2, 0, 3)
    r, lab = d.row(-1)
    assert np.array_equal(r, x[-1]) and lab == y[-1]
    tr, va = d.split(10, shuffle=True, seed=3)
    assert (len(tr), len(va)) == (40, 10)
    sub = d.subset(5, 10)
    d.close()
    assert len(sub) == 10 and sub.row(0)[1] == y[5]  # views outlive the dataset
    ld = tr.loader(16, shuffle=True, seed=1)
    assert ld.num_batches == 3 and len(ld) == 3
    e0 = list(ld)
    assert [len(b) for b in e0] == [16, 16, 8] and e0[0].labels is not None
    assert sorted(np.concatenate([b.labels for b in e0]).tolist()) == sorted(
        tr.row(i)[1] for i in range(len(tr)))
    e1 = list(ld)
    assert e1[0].epoch == 1
    ld.seek(0, 0)
    again = list(ld)
    assert all(np.array_equal(a.x, b.x) for a, b in zip(e0, again))
    expect(sgdlab.InvalidArgumentError, 'sgd_loader_new', sgdlab.Loader, tr, 0)
    # Regression targets.
    t = sgdlab.Dataset(x, x.sum(1))
    assert t.target_dim == 1 and t.num_classes == 0
    b = next(iter(t.loader(8, shuffle=False)))
    assert b.targets.shape == (8, 1) and np.allclose(b.y[:, 0], x[:8].sum(1))
    expect(sgdlab.InvalidArgumentError, 'labels[1]=-1: class labels must be >= 0', sgdlab.Dataset, x[:2], np.array([0, -1]))
    expect(sgdlab.NonFiniteError, 'sgd_dataset_from_labels', sgdlab.Dataset, [[np.nan, 0]], [0])
    expect(ValueError, 'labels must be', sgdlab.Dataset, x, y[:3])


def idx_bytes(arr, code):
    head = struct.pack('>BBBB', 0, 0, code, arr.ndim) + b''.join(struct.pack('>I', d) for d in arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder('>')).tobytes()


def test_idx(tmp_path):
    img = (np.arange(4 * 3 * 3) % 256).astype(np.uint8).reshape(4, 3, 3)
    lab = np.array([0, 1, 2, 1], np.uint8)
    a = sgdlab.Idx.from_bytes(idx_bytes(img, 0x08))
    assert a.shape == (4, 3, 3) and a.type == 0x08 and len(a) == 36
    assert np.array_equal(a.data, img) and not a.data.flags.writeable
    fi, fl = tmp_path / 'i.gz', tmp_path / 'l'
    fi.write_bytes(gzip.compress(idx_bytes(img, 0x08)))
    fl.write_bytes(idx_bytes(lab, 0x08))
    d = sgdlab.Dataset.load_idx(fi, fl)
    assert len(d) == 4 and d.dim == 9 and d.num_classes == 3
    assert np.allclose(d.row(1)[0], img[1].reshape(-1) / 255)
    d2 = sgdlab.Dataset.from_idx(sgdlab.Idx.read(fi), sgdlab.Idx.read(fl))
    assert np.array_equal(d2.row(3)[0], d.row(3)[0])
    expect(sgdlab.FormatError, 'sgd_idx_read_memory', sgdlab.Idx.from_bytes, idx_bytes(img, 0x08)[:-1])
