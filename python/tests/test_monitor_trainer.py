"""Monitor, Trainer, range test, search, checkpoints."""
import math

import numpy as np
import pytest

import sgdlab
from conftest import expect, spirals


def curve(n=300, blow=None):
    rng = np.random.default_rng(0)
    out = []
    for t in range(n):
        v = 2.3 * math.exp(-t / 80) + 0.1 + 0.02 * rng.standard_normal()
        if blow is not None and t >= blow:
            v *= 1.5 ** (t - blow + 1)
        out.append(v)
    return out


def test_monitor_events_and_state():
    m = sgdlab.Monitor('divergence_ratio=5', plateau_steps=200)
    assert m.options.divergence_ratio == 5 and m.options.plateau_steps == 200
    assert m.observe_many(curve(200)) == [] and m.verdict == 'healthy'
    obs = m.observe(float('nan'), grad_norm=1.0, lr=0.1)
    assert len(obs) >= 1 and obs[0].kind == 'nonfinite' and obs[0].severity == 'critical'
    assert obs[0].lr == 0.1 and obs[0].grad_norm == 1.0 and obs[0].suggested_action == 'rollback'
    assert 'learning rate' in obs[0].remedy and obs.action == 'continue'
    c = m.counters()
    assert c['verdict'] == 'diverged' and c['events']['nonfinite'] == 1 and c['steps'] == 201
    fresh = sgdlab.Monitor('divergence_ratio=5', plateau_steps=200)
    fresh.observe_many(curve(200))
    saved = fresh.state
    m.state = saved
    assert m.verdict == 'healthy'
    m.reset()
    assert m.counters()['steps'] == 0
    expect(sgdlab.NotFoundError, "bogus", sgdlab.Monitor, 'bogus=1')
    expect(sgdlab.RangeError, 'divergence_ratio', sgdlab.Monitor, divergence_ratio=0.5)
    expect(TypeError, 'has no field', sgdlab.Monitor, nope=1)
    bad = saved.copy()
    bad[0] = 12345
    expect(sgdlab.Error, 'sgd_monitor_state_import', setattr, m, 'state', bad)
    assert str(obs[0]).startswith('step 200: nonfinite')


def test_monitor_callbacks_choose_the_action():
    m = sgdlab.Monitor()
    seen = []
    cid = m.add_callback(lambda e: seen.append(e.kind) or ('scale_lr', 0.25), 'alarms')
    m.add_callback(lambda e: 'skip', ['spike'])
    events = []
    for v in curve(120, blow=60):
        o = m.observe(v)
        if o:
            events.append((o[0].kind, o.action, o.lr_scale))
    assert ('divergence', 'scale_lr', 0.25) in events, events
    assert 'divergence' in seen
    m.remove_callback(cid)
    expect(sgdlab.NotFoundError, 'sgd_monitor_remove_callback', m.remove_callback, cid)
    expect(sgdlab.InvalidArgumentError, 'unknown monitor event kind', m.add_callback, print, 'nope')


def test_trainer_fits_and_guard_reports():
    x, y = spirals(400)
    d = sgdlab.Dataset(x, y)
    tr, va = d.split(100, shuffle=True, seed=1)
    model = sgdlab.Model('2-32-tanh-32-tanh-3:seed=2')
    opt = sgdlab.Optimizer('adam:lr=0.03', model.num_params)
    sched = sgdlab.Schedule('cosine:T_max=400', 0.03)
    t = sgdlab.Trainer(model, opt, tr, va, schedule=sched, options='epochs=40', batch_size=32, progress_interval=5)
    progress, events = [], []
    t.on_progress(lambda p: progress.append(p))
    t.on_event(lambda e: events.append(e))
    assert t.next_lr == pytest.approx(0.03)
    assert t.fit(max_steps=10) == 'budget'
    assert t.stats()['step'] == 10
    assert t.fit() == 'completed'
    h = t.history
    assert len(h) == 40 and h[-1]['val_loss'] < h[0]['val_loss'] and h[-1]['val_accuracy'] > 0.6
    assert progress[-1].phase == 'done' and any(p.phase == 'epoch_end' for p in progress)
    state = t.state
    assert isinstance(state, bytes) and len(state) > 0
    t.state = state
    expect(sgdlab.Error, 'sgd_trainer_state_import', setattr, t, 'state', b'x' * len(state))
    # Closing the borrowed objects does not free them under the trainer.
    model.close()
    opt.close()
    assert t.stats()['updates'] > 0


def test_trainer_guard_rescues_and_callbacks_can_stop():
    x, y = spirals(400)
    d = sgdlab.Dataset(x, y)
    model = sgdlab.Model('2-64-relu-64-relu-3:seed=0')
    opt = sgdlab.Optimizer('sgd:lr=1.5,momentum=0.9', model.num_params)
    t = sgdlab.Trainer(model, opt, d, options='epochs=20,batch_size=32')
    rescues = []
    t.on_event(lambda e: rescues.append(e.message) if e.kind == 'rescue' else None)
    try:
        t.fit()
    except sgdlab.DivergedError:
        pass
    assert rescues and 'rolled back' in rescues[0]
    assert t.stats()['rescues'] >= 1
    # A progress callback that stops: CanceledError.
    m2 = sgdlab.Model('2-8-tanh-3')
    t2 = sgdlab.Trainer(m2, sgdlab.Optimizer('sgd:lr=0.1', m2.num_params), d, epochs=3)
    t2.on_progress(lambda p: False)
    expect(sgdlab.CanceledError, '', t2.fit)
    assert t2.stop_reason == 'canceled'
    expect(sgdlab.ShapeError, 'sgd_trainer_new', sgdlab.Trainer, m2, sgdlab.Optimizer('sgd:lr=1', 3), d)


def test_lr_find_and_search():
    x, y = spirals(400)
    d = sgdlab.Dataset(x, y)
    model = sgdlab.Model('2-32-tanh-3:seed=1')
    opt = sgdlab.Optimizer('sgd:lr=0.1,momentum=0.9', model.num_params)
    before = model.get_params()
    steps = []
    r = sgdlab.lr_find(model, opt, d, steps=80, batch_size=64, lr_min=1e-4, lr_max=100,
                       progress=lambda *a: steps.append(a))
    assert np.array_equal(model.get_params(), before)
    assert len(r) == len(steps) and r.end_reason in ('completed', 'diverged', 'nonfinite')
    assert r.lrs[0] == pytest.approx(1e-4) and np.all(np.diff(r.lrs) > 0)
    lr = r.suggestion()
    assert 1e-4 < lr < 100 and r.suggestions['steepest'] == lr
    assert any(p['used'] for p in r.points()) and r.why_not() == ''
    expect(sgdlab.CanceledError, '', sgdlab.lr_find, model, opt, d, steps=20, progress=lambda *a: False)
    assert np.array_equal(model.get_params(), before)
    res = sgdlab.grid_search('2-16-tanh-3', d, lrs=[0.01, 0.3], optimizers=['sgd:momentum=0.9', 'adam'],
                             max_steps=40, trainer='batch_size=64')
    assert len(res) == 4 and {t.optimizer for t in res} == {'sgd:momentum=0.9', 'adam'}
    assert res.best is not None and res[-1].index == 3
    rnd = sgdlab.random_search('2-16-tanh-3', d, trials=3, lr_min=0.01, lr_max=1, max_steps=20, seed=4, threads=2)
    assert len(rnd) == 3 and all(0.01 <= t.lr <= 1 for t in rnd)


def test_search_with_a_python_objective():
    seen = []

    def objective(trial):
        seen.append(trial.lr)
        return {'final_loss': (math.log10(trial.lr) + 2) ** 2, 'steps': 1, 'diverged': trial.lr > 5}

    res = sgdlab.grid_search(objective=objective, lr_min=1e-4, lr_max=10, lr_count=6, threads=2)
    assert len(res) == 6 and sorted(seen) == pytest.approx(sorted(t.lr for t in res))
    assert res.best.lr == pytest.approx(1e-2) and res[-1].status == 'diverged'


def test_analyze_lr_curve_needs_the_c_function():
    if sgdlab.has('sgd_lrfind_analyze'):
        lrs = np.geomspace(1e-5, 10, 60)
        losses = 2.3 - 2 / (1 + np.exp(-(np.log10(lrs) + 2) * 3)) + np.where(lrs > 1, (lrs - 1) * 5, 0)
        r = sgdlab.analyze_lr_curve(lrs, losses)
        assert 1e-4 < r.suggestion() < 1
    else:
        expect(sgdlab.UnsupportedError, 'sgd_lrfind_analyze', sgdlab.analyze_lr_curve, [1e-3, 1e-2], [1, 1])


def test_checkpoints(tmp_path):
    x, y = spirals(200)
    d = sgdlab.Dataset(x, y)
    model = sgdlab.Model('2-16-tanh-3:seed=1')
    opt = sgdlab.Optimizer('adam:lr=0.01', model.num_params)
    t = sgdlab.Trainer(model, opt, d, epochs=2, batch_size=32)
    t.fit(max_steps=5)
    path = tmp_path / 'run.ckpt'
    sgdlab.Checkpoint.save(path, trainer=t)
    with sgdlab.CheckpointReader(path) as r:
        assert r.version[0] == 1 and 'model' in r and 'nope' not in r
        names = [s.name for s in r.sections()]
        assert names[:2] == ['model', 'optim'] and all(s.required for s in r.sections())
        w = r.read('model', '0.weight')
        assert w.shape == (16, 2) and np.array_equal(w, model.state_dict()['0.weight'])
        assert np.array_equal(r.view('model', '0.weight'), w)
        assert r.read('optim', 'step')[0] == 5
        r.check_tensor('model', '0.weight', np.float32, (16, 2))
        expect(sgdlab.ShapeError, '0.weight', r.check_tensor, 'model', '0.weight', np.float32, (8, 2))
        m2 = r.load_model()
        assert np.array_equal(m2.params, model.params)
        r.check_sections(names)
    # Restore into fresh objects: the run continues as the original.
    model2 = sgdlab.Model('2-16-tanh-3:seed=9')
    opt2 = sgdlab.Optimizer('adam:lr=0.01', model2.num_params)
    t2 = sgdlab.Trainer(model2, opt2, d, epochs=2, batch_size=32)
    sgdlab.Checkpoint.load(path, trainer=t2)
    t.fit()
    t2.fit()
    assert np.array_equal(model.params, model2.params)
    expect(sgdlab.ShapeError, '0.weight', sgdlab.Checkpoint.load, path, model=sgdlab.Model('2-8-tanh-3'))
    # The low-level writer, in memory and on disk.
    w = sgdlab.CheckpointWriter()
    w.begin_section('mine', required=False)
    w.add('a', np.arange(6, dtype=np.int64).reshape(2, 3))
    w.add('b', np.zeros(3, np.float32), copy=True)
    w.add_i64('n', 7)
    w.add_f64('lr', 0.5)
    w.add_parts(model=model)
    blob = w.to_bytes()
    assert len(blob) == w.size
    r = sgdlab.CheckpointReader(blob)
    assert r.read('mine', 'a').tolist() == [[0, 1, 2], [3, 4, 5]] and r.read_i64('mine', 'n') == 7
    assert r.read_f64('mine', 'lr') == 0.5 and [i.name for i in r.tensors('mine')] == ['a', 'b', 'n', 'lr']
    expect(sgdlab.VersionError, 'model', r.check_sections, ['mine'])
    w.save(tmp_path / 'w.ckpt')
    assert sgdlab.Checkpoint.cleanup_stale(tmp_path / 'w.ckpt') == 0
    expect(sgdlab.FormatError, 'sgd_ckpt_reader_open_memory', sgdlab.CheckpointReader, blob[:-8])
    expect(TypeError, 'cannot be stored', w.add, 'c', np.zeros(2, np.float16))
