"""The 0.2 API from Python: text corpora, vocabularies, the char-rnn datasets and
generation (against `sgdlab generate`), a recurrent model's carried state and
sequence length, every tensor by torch's names (batchnorm's buffers), the
monitor's producer steps, finish() and gradient-norm spikes, optimizer
hyperparameters and evaluation points, search outcomes filled in, the
trainer's communication hook on two threads, and that every function the
library exports is reached from the package."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading

import numpy as np
import pytest

import sgdlab
from sgdlab import errors

DATA = os.environ.get('SGDLAB_TEST_DATA') or os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'data')
FORTUNES = os.path.join(DATA, 'text', 'fortunes')
HERE = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------------ text and vocabularies
def test_text_load_and_from_bytes():
    t = sgdlab.Text.load(FORTUNES)
    assert len(t) == t.num_bytes == os.path.getsize(FORTUNES)  # ASCII sample
    assert t.num_files == 1
    v = t.vocab
    assert v.unit == 'utf8' and len(v) == len(set(open(FORTUNES, encoding='utf-8').read()))
    assert v.decode(t.tokens[:200]) == open(FORTUNES, encoding='utf-8').read()[:200]
    assert not t.tokens.flags.writeable
    toks = t.tokens
    t.close()
    assert toks.sum() > 0  # the view keeps the corpus alive
    u = sgdlab.Text.from_str('héllo wörld\n')
    assert len(u) == 12 and u.num_bytes == len('héllo wörld\n'.encode())
    assert ''.join(u.vocab) == ''.join(sorted(set('héllo wörld\n')))
    b = sgdlab.Text.from_bytes(b'\x00\xff\x00', unit='bytes')
    assert b.vocab.unit == 'bytes' and list(b.vocab) == [0, 255] and list(b.tokens) == [0, 1, 0]
    assert b.vocab.decode([1, 0]) == b'\xff\x00'


def test_text_errors_carry_the_message(tmp_path):
    with pytest.raises(errors.FormatError, match='byte 2'):
        sgdlab.Text.from_bytes(b'ab\xffcd')  # 'byte 2 (0xff): not valid UTF-8'
    with pytest.raises(errors.FormatError):
        sgdlab.Text.from_bytes(b'')
    with pytest.raises(errors.Error, match='max_bytes|more than'):
        sgdlab.Text.from_bytes(b'abcdef', max_bytes=3)
    missing = str(tmp_path / 'missing.txt')
    with pytest.raises(errors.IOFailure, match='missing.txt'):
        sgdlab.Text.load([FORTUNES, missing])
    with pytest.raises(errors.InvalidArgumentError, match='unit'):
        sgdlab.Text.from_bytes(b'abc', unit='words')
    (tmp_path / 'a.txt').write_text('abc')
    (tmp_path / 'b.txt').write_text('def')
    d = sgdlab.Text.load(tmp_path)
    assert d.num_files == 2 and d.vocab.decode(d.tokens) == 'abcdef'


def test_vocab():
    v = sgdlab.Vocab('hello')
    assert list(v) == ['e', 'h', 'l', 'o'] and v.size == 4
    ids = v.encode('hole')
    assert ids.dtype == np.int32 and list(ids) == [1, 3, 2, 0]
    assert v.decode(ids) == 'hole'
    with pytest.raises(errors.NotFoundError, match="'p' .* at byte 3"):
        v.encode('help')
    with pytest.raises(errors.InvalidArgumentError):
        v.decode([0, 4])
    w = v.copy()
    assert w == v and hash(w) == hash(v) and w is not v
    assert sgdlab.Vocab([101, 104]) != v and sgdlab.Vocab(b'ehlo') != v  # other symbols; other unit
    with pytest.raises(errors.InvalidArgumentError):
        sgdlab.Vocab([5, 3])  # not increasing
    with pytest.raises(errors.InvalidArgumentError):
        sgdlab.Vocab([0xD800])  # a surrogate
    assert v.generate_bound(10) == 41
    assert sgdlab.Vocab(b'ab').generate_bound(10) == 11


def test_text_datasets_layout():
    t = sgdlab.Text.from_str('abcdefghijklmnopqrstuvwxyz' * 8)
    T, B = 5, 4
    train, val = t.datasets(seq_len=T, streams=B, val_fraction=0.1)
    assert val is not None and train.streams == B and train.labels_per_row == T and train.dim == T
    assert train.num_classes == 26
    toks = t.tokens
    n = len(toks) - int(len(toks) * 0.1)  # the training part is the start of the text
    per = (n - 1) // B
    k, b = 1, 2
    x, labels = train.row(k * B + b)
    start = b * per + k * T
    assert list(x.astype(int)) == list(toks[start:start + T])
    assert list(labels) == list(toks[start + 1:start + T + 1])
    batch = next(iter(train.loader(B, shuffle=False)))
    assert batch.labels is not None and batch.labels.shape == (B, T)
    tr2, none = t.datasets(seq_len=T, streams=B, val_fraction=0)
    assert none is None
    with pytest.raises(errors.InvalidArgumentError, match='tokens'):
        t.datasets(seq_len=100, streams=32)


def test_sequence_labels_dataset_and_streams():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.arange(12, dtype=np.int32).reshape(4, 3) % 5
    d = sgdlab.Dataset(x, y)
    assert d.labels_per_row == 3 and d.streams == 0
    d.streams = 2
    assert d.streams == 2
    with pytest.raises(errors.InvalidArgumentError, match='divide|3'):
        d.streams = 3
    assert list(d.row(1)[1]) == list(y[1])


# ------------------------------------------------------------------ a char LSTM, generation
SPEC = 'tokens-embedding(16)-lstm(48)-dense(vocab):vocab=%d,seq_len=25,seed=3'


def _trained(steps=60):
    text = sgdlab.Text.load(FORTUNES)
    train, val = text.datasets(seq_len=25, streams=8, val_fraction=0.1)
    model = sgdlab.Model(SPEC % len(text.vocab), max_batch=8)
    opt = sgdlab.Optimizer('adam:lr=0.01', model.num_params)
    losses = []
    loader = train.loader(8, shuffle=False)
    for _ in range(steps):
        b = loader.next() or loader.next()
        model.zero_grad()
        losses.append(model.forward_backward(b.x, b.labels))
        opt.step(model)
    return text, val, model, losses


def test_char_lstm_trains_and_generates(tmp_path):
    text, val, model, losses = _trained()
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) - 0.5, losses  # from ~log(80) = 4.4
    vloss, acc = model.evaluate(val, batch_size=8)
    assert math.isfinite(vloss) and 0 < acc <= 1
    assert model.input_shape == (25,) and model.output_shape == (25, len(text.vocab)) and model.positions == 25
    assert model.layers == ['embedding', 'lstm', 'dense']
    out = model.predict(np.zeros((2, 25)))
    assert out.shape == (2, 25, len(text.vocab))
    params, state = model.get_params(), model.get_state()
    a = model.generate(text, prime='You', length=60, temperature=0.8, seed=5)
    assert isinstance(a, str) and len(a) == 60
    assert sgdlab.generate(model, text.vocab, prime='You', length=60, temperature=0.8, seed=5) == a
    assert model.generate(text, prime='You', length=60, temperature=0.8, seed=6) != a
    assert np.array_equal(model.get_params(), params) and np.array_equal(model.get_state(), state)
    assert model.seq_len == 25 and model.training
    greedy = model.generate(text.vocab, length=30, temperature=0)
    assert greedy == model.generate(text.vocab, length=30, temperature=0, seed=99)
    with pytest.raises(errors.NotFoundError, match='vocabulary'):
        model.generate(text, prime='\u20ac')  # not in the sample
    with pytest.raises(errors.InvalidArgumentError, match='80|81'):
        model.generate(sgdlab.Vocab([ord(c) for c in sorted(set(open(FORTUNES).read()) | {'~', '\x01'})]))
    with pytest.raises(errors.Error, match='temperature'):
        model.generate(text, temperature=-1)

    # The checkpoint with its vocabulary, read back, and `sgdlab generate` on it.
    path = str(tmp_path / 'lstm.ckpt')
    sgdlab.Checkpoint.save(path, model=model, vocab=text)
    vocab = sgdlab.Checkpoint.load_vocab(path)
    assert vocab == text.vocab
    with sgdlab.CheckpointReader(path) as r:
        r.check_vocab(text.vocab)
        with pytest.raises(errors.Error, match='vocab'):
            r.check_vocab(sgdlab.Vocab('abc'))
        loaded = r.load_model()
    assert loaded.generate(vocab, prime='You', length=60, temperature=0.8, seed=5) == a
    exe = os.environ.get('SGDLAB_EXE')
    if exe:
        res = subprocess.run([exe, 'generate', '--resume', path, '--prime', 'You', '--length', '60',
                              '--temperature', '0.8', '--seed', '5', '--json'], capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)['text'] == a
    plain = str(tmp_path / 'plain.ckpt')
    sgdlab.Checkpoint.save(plain, model=model)
    with pytest.raises(errors.NotFoundError, match='vocab'):
        sgdlab.Checkpoint.load_vocab(plain)


def test_carried_state_and_seq_len():
    model = sgdlab.Model('tokens-embedding(5,4)-gru(6)-dense(5):seq_len=3,seed=1', max_batch=2)
    assert model.state_size == 2 * 6 * 4
    assert np.all(model.get_state() == 0)
    x = np.array([[1, 2, 3], [4, 0, 1]], dtype=np.float32)
    model.eval()
    y1 = model.forward(x)
    s = model.get_state()
    assert np.any(s != 0)  # the hidden state carries to the next batch
    st = model.state_tensors()
    assert list(st) == ['1.h_n'] and st['1.h_n'].size * 4 == model.state_size
    y2 = model.forward(x)
    assert not np.allclose(y1, y2)
    model.set_state(s)
    assert np.allclose(model.forward(x), y2)
    model.reset_state()
    assert np.all(model.get_state() == 0)
    assert np.allclose(model.forward(x), y1)
    with pytest.raises(errors.ShapeError):
        model.set_state(np.zeros(3))
    bad = s.copy()
    bad[5] = np.nan
    with pytest.raises(errors.NonFiniteError, match='5'):
        model.set_state(bad)
    # Step by step: seq_len 1 and the carried state give what one pass over 3 steps gives.
    model.reset_state()
    full = model.forward(x)
    model.reset_state()
    model.seq_len = 1
    steps = [model.forward(x[:, t:t + 1]) for t in range(3)]
    model.seq_len = 3
    assert np.allclose(np.concatenate(steps, axis=1), full, atol=1e-5)
    with pytest.raises(errors.InvalidArgumentError):
        sgdlab.Model('1x4x4-conv2d(2,3)-flatten-3').seq_len = 2


def test_state_dict_with_buffers_by_torch_names():
    m = sgdlab.Model('4-8-batchnorm1d-relu-3:seed=2', max_batch=16)
    sd = m.state_dict()
    assert list(sd) == ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var',
                        '1.num_batches_tracked', '3.weight', '3.bias']
    assert sd['1.num_batches_tracked'].dtype == np.int64 and sd['1.num_batches_tracked'].shape == ()
    assert [n for n, _ in m.named_buffers()] == ['1.running_mean', '1.running_var', '1.num_batches_tracked']
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32) * 3 + 1
    m.forward_backward(x, np.zeros(16, dtype=np.int32))
    assert int(sd['1.num_batches_tracked']) == 1 and np.any(sd['1.running_mean'] != 0)  # views
    assert m.buffers.nbytes == int(sgdlab.lib.sgd_model_buffer_bytes(m._h))
    snap = {k: np.array(v) for k, v in sd.items()}
    m2 = sgdlab.Model('4-8-batchnorm1d-relu-3:seed=9', max_batch=16)
    m2.load_state_dict(snap)
    assert all(np.array_equal(m2.read_tensor(k), v) for k, v in snap.items())
    assert np.allclose(m2.predict(x), m.predict(x))
    with pytest.raises(errors.NotFoundError, match='running_var'):
        m2.load_state_dict({k: v for k, v in snap.items() if k != '1.running_var'})
    bad = dict(snap)
    bad['1.num_batches_tracked'] = np.int64(-1)
    before = m2.get_params()
    with pytest.raises(errors.RangeError):
        m2.load_state_dict(bad)
    assert np.array_equal(m2.get_params(), before)
    with pytest.raises(errors.NonFiniteError):
        m2.write_tensor('1.running_var', np.full(8, np.inf))
    with pytest.raises(errors.NotFoundError, match='nope'):
        m2.find_tensor('nope')
    info = m2.tensor_info('1.running_var')
    assert info.role == 'buffer' and info.shape == (8,) and info.param_kind is None
    torch = pytest.importorskip('torch') if not os.environ.get('SGDLAB_TEST_SANITIZED') else None
    if torch is not None:
        t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 3))
        assert list(t.state_dict()) == list(sd)
        t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in snap.items()})
        t.eval()
        assert np.allclose(t(torch.from_numpy(x)).detach().numpy(), m.predict(x), atol=1e-5)


def test_shaped_builder_and_layer_kinds():
    b = sgdlab.Model.builder((1, 8, 8))
    b.layer('conv2d(4,3,padding=1)-batchnorm2d-relu').layer('maxpool2d(2)').layer('flatten').dense(3)
    m = b.build(seed=1)
    assert m.layers == ['conv2d', 'batchnorm2d', 'relu', 'maxpool2d', 'flatten', 'dense']
    assert m.input_shape == (1, 8, 8) and m.layer_shape(3) == (4, 4, 4) and m.output_shape == (3,)
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    assert m.predict(x).shape == (2, 3)
    with pytest.raises(errors.InvalidArgumentError, match='conv2d'):
        sgdlab.Model.builder((1, 2, 2)).layer('conv2d(4,3)')
    with pytest.raises(errors.ShapeError, match='1, 8, 8'):
        m.predict(np.zeros((2, 5)))


# ------------------------------------------------------------------ monitor
def test_monitor_steps_finish_and_grad_spikes():
    mon = sgdlab.Monitor()
    events = []
    for i in range(60):
        g = 500.0 if i == 40 else 1.0 + 0.01 * (i % 3)
        events += mon.observe(2.0 * math.exp(-i / 30), grad_norm=g, step=100 * i).events
    spikes = [e for e in events if e.kind == 'grad_spike']
    assert len(spikes) == 1 and spikes[0].step == 40 and spikes[0].producer_step == 4000
    assert spikes[0].ref_step is None
    assert mon.counters()['events']['grad_spike'] == 1
    assert mon.finish().verdict == 'healthy'
    assert mon.counters()['finished']
    with pytest.raises(errors.InvalidArgumentError, match='step'):
        mon.observe(1.0, step=-2)
    # A short log that never made progress: only finish() can tell.
    flat = sgdlab.Monitor()
    for i in range(20):
        flat.observe(2.3 + 0.01 * math.sin(i))
    assert flat.verdict == 'healthy'
    done = flat.finish()
    assert done.verdict == 'stagnant' and [e.kind for e in done] == ['stagnation']
    assert flat.finish().events == []  # again: nothing new
    seen = []
    mon2 = sgdlab.Monitor()
    mon2.add_callback(lambda e: seen.append(e.kind), 'grad_spike')
    for i in range(50):
        mon2.observe(1.0 / (i + 1), grad_norm=1000.0 if i == 45 else 1.0)
    assert seen == ['grad_spike']


# ------------------------------------------------------------------ optimizers
def test_optimizer_hparams():
    hp = sgdlab.kind_hparams('adam')
    assert [h.name for h in hp[:4]] == ['lr', 'weight_decay', 'beta1', 'beta2']
    beta2 = hp[3]
    assert beta2.default == 0.999 and beta2.lower == 0 and beta2.upper == 1 and 'upper_open' in beta2.flags
    assert 'momentum' in hp[2].flags
    with pytest.raises(errors.NotFoundError, match="unknown optimizer 'nosuch'"):
        sgdlab.kind_hparams('nosuch')
    o = sgdlab.Optimizer('adam:lr=0.01', 4)
    assert [h.name for h in o.hparams()] == [h.name for h in hp]
    assert o.hparam_bounds('eps').lower == 0
    with pytest.raises(errors.NotFoundError, match='gamma'):
        o.hparam_bounds('gamma')
    assert o.momentum_name == 'beta1'
    assert sgdlab.Optimizer('sgd:lr=0.1,momentum=0.9', 4).momentum_name == 'momentum'
    assert sgdlab.Optimizer('adagrad:lr=0.1', 4).momentum_name is None
    assert re.fullmatch(r'[a-z0-9_]+', sgdlab.simd_level())


def test_eval_point_and_tensors():
    model = sgdlab.Model('2-4-tanh-2:seed=1')
    o = sgdlab.Optimizer('sgd_sf:lr=0.1', model.num_params)
    assert o.has_eval_point and not o.at_eval_point
    o.set_tensors(model)
    x = np.random.default_rng(1).standard_normal((8, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    for _ in range(3):
        model.zero_grad()
        model.forward_backward(x, y)
        o.step(model)
    train_point = model.get_params()
    o.eval_point(model)
    assert o.at_eval_point and not np.array_equal(model.get_params(), train_point)
    o.eval_point(model, False)
    assert not o.at_eval_point and np.allclose(model.get_params(), train_point, atol=1e-6)
    with pytest.raises(errors.ShapeError):
        o.eval_point(np.zeros(3, dtype=np.float32))
    with pytest.raises(errors.RangeError, match='add up to 3, not the %d' % model.num_params):
        o.set_tensors([1, 2])
    assert not sgdlab.Optimizer('adam:lr=0.1', 3).has_eval_point


class _Scaled(sgdlab.HostOptimizer):
    name = 'scaled'
    hparams = [sgdlab.Hparam('gain', 1.0, 0.0, 10.0, ('lower_open',))]

    def __init__(self):
        self.gain = 1.0

    def step(self, params, grads, slots, lr, args):
        params -= lr * self.gain * grads

    def set_hparam(self, name, value):
        if name != 'gain':
            raise KeyError(name)
        self.gain = value

    def get_hparam(self, name):
        if name != 'gain':
            raise KeyError(name)
        return self.gain


def test_host_optimizer_hparams():
    o = sgdlab.Optimizer.custom(_Scaled(), 3, lr=0.5)
    names = [h.name for h in o.hparams()]
    assert names == ['lr', 'weight_decay', 'gain']
    gain = o.hparam_bounds('gain')
    assert gain.default == 1.0 and gain.upper == 10.0 and gain.flags == ('lower_open',)
    o['gain'] = 2.0
    p = np.ones(3, dtype=np.float32)
    o.step(p, np.ones(3, dtype=np.float32))
    assert np.allclose(p, 0.0)
    with pytest.raises(errors.InvalidArgumentError, match='flag'):
        sgdlab.Hparam('x', flags=('odd',)).flag_bits()


# ------------------------------------------------------------------ search, core, trainer comm
def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    return sgdlab.Dataset(x, (x[:, 0] * x[:, 1] > 0).astype(np.int32))


def test_search_set_trial():
    train, val = _data().split(16)
    res = sgdlab.grid_search('2-8-tanh-2', train, val, lrs=[0.1, 0.3], max_steps=8)
    t = res[1]
    import dataclasses
    moved = dataclasses.replace(t, val_accuracy=1.0, final_loss=0.01, val_loss=0.02)
    res.set_trial(1, moved)
    assert res[1].val_accuracy == 1.0 and res.best.index == 1
    with pytest.raises(errors.InvalidArgumentError, match='index'):
        res.set_trial(0, moved)
    with pytest.raises(errors.RangeError, match='accuracy'):
        res.set_trial(1, dataclasses.replace(moved, val_accuracy=2.0))


def test_set_error():
    assert sgdlab.set_error(-2, 'my host failed') == -2
    assert sgdlab.last_error() == 'my host failed'


def _train_comm(rank, size, sum_, out, fails=False):
    data = _data(96, seed=4)
    model = sgdlab.Model('2-8-tanh-2:seed=5')
    opt = sgdlab.Optimizer('sgd:lr=0.2', model.num_params)
    tr = sgdlab.Trainer(model, opt, data, epochs=2, batch_size=16, shuffle=0, guard=0)
    if size > 1:
        tr.set_comm(rank, size, lambda f, d: sum_(rank, f, d, fails))
    try:
        tr.fit()
        out[rank] = model.get_params()
    except BaseException as e:  # noqa: B902
        out[rank] = e


class _ThreadSum:
    def __init__(self, n):
        self.bufs = [None] * n
        self.barrier = threading.Barrier(n, timeout=60)

    def __call__(self, rank, f, d, fails):
        if fails:
            self.barrier.abort()
            raise RuntimeError('the transport failed')
        self.bufs[rank] = (f.copy(), d.copy())
        self.barrier.wait()
        f[:] = sum(b[0] for b in self.bufs)
        d[:] = sum(b[1] for b in self.bufs)
        self.barrier.wait()


def test_trainer_comm_on_threads():
    alone = {}
    _train_comm(0, 1, None, alone)
    out = {}
    s = _ThreadSum(2)
    ths = [threading.Thread(target=_train_comm, args=(r, 2, s, out)) for r in range(2)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert isinstance(out[0], np.ndarray), out[0]
    assert np.array_equal(out[0], out[1])
    assert np.allclose(out[0], alone[0], atol=1e-5)  # DDP: what one process computes
    out = {}
    s = _ThreadSum(2)
    ths = [threading.Thread(target=_train_comm, args=(r, 2, s, out, r == 1)) for r in range(2)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert isinstance(out[1], RuntimeError) and 'transport' in str(out[1])
    assert isinstance(out[0], BaseException)  # the peer was told (the barrier broke), not left waiting


# ------------------------------------------------------------------ the whole API is reached
#: Exported functions no module calls by name, and why.
NOT_CALLED = {
    # The typed constructors of the schedules: Schedule(spec) and Schedule.create(kind, ...) reach them.
    r'sgd_sched_(constant|step|multistep|exponential|polynomial|cosine|cosine_warm_restarts|linear|onecycle|'
    r'cyclic)_(options_init|new)': 'the spec strings cover them (declared in _lib.py all the same)',
    r'sgd_version_(number|string)': 'called by _lib.load() on the raw CDLL, before the table',
    r'sgd_error_clear': 'called by _lib.check() after it read the message',
    r'sgd_lrfind_analyze': 'called by tune.analyze_lr_curve() (through has() first, for a library without it)',
    r'sgd_trainer_(model|optim|sched|monitor)': 'Trainer keeps the Python objects it was given (.model ...)',
}


def test_every_exported_function_is_reached():
    mapfile = os.environ.get('SGDLAB_MAP') or os.path.join(HERE, '..', '..', 'lib', 'libsgdlab.map')
    names = sorted(set(re.findall(r'\b(sgd_[a-z0-9_]+);', open(mapfile).read())))
    pkg = os.path.join(HERE, '..', 'sgdlab')
    src = ''
    for f in sorted(os.listdir(pkg)):
        if f.endswith('.py') and f not in ('_lib.py', '_structs.py'):
            src += open(os.path.join(pkg, f)).read()
    used = set(re.findall(r"lib\.(sgd_[a-z0-9_]+)|free_fn\('(sgd_[a-z0-9_]+)'\)", src))
    used = {a or b for a, b in used}
    missing = [n for n in names if n not in used and not any(re.fullmatch(p, n) for p in NOT_CALLED)]
    assert missing == [], 'exported but not reached from the package: %s' % missing
