#!/usr/bin/python3
"""Writes tests/data/logs: training logs in the formats of the frameworks that
`sgdlab monitor` reads, each with its expected reading and verdict
(tests/data/logs/MANIFEST.tsv, checked by tests/test_log_corpus.py).

    python3 tests/gen_log_corpus.py tests/data/logs

No torch needed: the losses are real curves from tests/data/monitor-gen
(tests/gen_monitor_curves.py), written out the way each framework prints
them. The formats were written from the frameworks' own print statements and
from real logs pasted in public issue threads (the `source` column of the
manifest); nothing here is copied from a real log. Timestamps, times and
other decorations are made up, deterministically.

Manifest columns: file, options (for sgdlab monitor), observations (the
training observations of each run, comma-separated), verdicts (each run's),
eval (evaluation values reported), source (where the format comes from),
what (what the file tests).
"""
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CURVES = os.path.join(HERE, 'data', 'monitor-gen')


def curve(name):
    out = []
    for line in open(os.path.join(CURVES, name + '.txt')):
        if not line.startswith('#') and line.strip():
            out.append(float(line))
    return out


def every(x, k):
    return [(i, x[i]) for i in range(0, len(x), k)]


def block_means(x, k):
    return [sum(x[i:i + k]) / len(x[i:i + k]) for i in range(0, len(x), k)]


def lr_cosine(i, n, base):
    return base * 0.5 * (1 + math.cos(math.pi * i / n))


class Corpus:
    def __init__(self, outdir):
        self.outdir = outdir
        self.rows = []
        os.makedirs(outdir, exist_ok=True)

    def add(self, name, text, obs, verdicts, ev=0, options='', source='', what='', binary=False):
        path = os.path.join(self.outdir, name)
        if binary:
            with open(path, 'wb') as f:
                f.write(text)
        else:
            with open(path, 'w', encoding='utf-8', newline='') as f:
                f.write(text)
        obs = obs if isinstance(obs, list) else [obs]
        verdicts = verdicts if isinstance(verdicts, list) else [verdicts]
        self.rows.append((name, options, ','.join(str(o) for o in obs), ','.join(verdicts), str(ev), source, what))

    def write_manifest(self):
        with open(os.path.join(self.outdir, 'MANIFEST.tsv'), 'w', encoding='utf-8') as f:
            f.write('file\toptions\tobservations\tverdicts\teval\tsource\twhat\n')
            for r in self.rows:
                f.write('\t'.join(r) + '\n')


def nanogpt(c):
    # karpathy/nanoGPT train.py: print(f"step {iter_num}: train loss {..:.4f}, val loss {..:.4f}"),
    # print(f"iter {iter_num}: loss {lossf:.4f}, time {dt*1000:.2f}ms, mfu {running_mfu*100:.2f}%"),
    # print(f"saving checkpoint to {out_dir}").
    rng = random.Random(1)
    x = curve('gru__adam__lr0.01__s7')
    lines = ['Overriding config with config/train_shakespeare_char.py:', '# train a miniature character-level '
             'shakespeare model', 'tokens per iteration will be: 16,384',
             'found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)', 'Initializing a new model from scratch',
             'number of parameters: 10.65M', 'num decayed parameter tensors: 26, with 10,740,096 parameters',
             'num non-decayed parameter tensors: 13, with 4,992 parameters', 'using fused AdamW: True',
             'compiling the model... (takes a ~minute)']
    n = 0
    evals = 0
    for i, v in enumerate(x):
        if i % 50 == 0:
            lines.append('step %d: train loss %.4f, val loss %.4f' % (i, v * 0.98, v * 1.02 + 0.01))
            evals += 1
            if i > 0:
                lines.append('saving checkpoint to out-shakespeare-char')
        if i % 2 == 0:
            mfu = -100.0 if i < 10 else 12.3 + rng.random()
            lines.append('iter %d: loss %.4f, time %.2fms, mfu %.2f%%' % (i, v, 30 + 5 * rng.random(), mfu))
            n += 1
    c.add('nanogpt.log', '\n'.join(lines) + '\n', n, 'healthy', evals, '',
          'karpathy/nanoGPT train.py print statements',
          'numbers after words; the eval line "step N: train loss, val loss" is evaluation; '
          '"saving checkpoint" and the config lines are skipped')


def modded_nanogpt(c):
    # KellerJordan/modded-nanogpt train_gpt2.py: print0(f"step:{step}/{N} train_loss:{..:.4f} train_time:{..:.0f}ms
    # step_avg:{..:.2f}ms") and f"step:{step}/{N} val_loss:{val_loss:.4f} train_time:... step_avg:..."
    x = curve('gru__adam__lr0.32__s7')
    lines = []
    t = 0.0
    n = ev = 0
    for i, v in enumerate(x):
        step = i + 1
        t += 250.0
        if i % 25 == 0:
            lines.append('step:%d/300 val_loss:%.4f train_time:%.0fms step_avg:%.2fms' % (i, v * 1.01, t, t / step))
            ev += 1
        lines.append('step:%d/300 train_loss:%.4f train_time:%.0fms step_avg:%.2fms' % (step, v, t, t / step))
        n += 1
    c.add('modded-nanogpt.log', '\n'.join(lines) + '\n', n, 'unstable', ev, '',
          'KellerJordan/modded-nanogpt train_gpt2.py print0 lines',
          'key:value without spaces; val_loss lines are evaluation; a learning rate too high (unstable)')


def llmc(c):
    # karpathy/llm.c train_gpt2.cu logger: "s:%d trl:%.4f lr:%.6f norm:%.2f" and "s:%d tel:%.4f".
    x = curve('gru__adam__lr0.01__s7')
    lines = []
    n = ev = 0
    for i, v in enumerate(x):
        if i % 20 == 0:
            lines.append('s:%d tel:%.4f' % (i, v * 1.03))
            ev += 1
        norm = 1.5 + 0.2 * math.sin(i)
        if i == 200:
            norm = 1.5 * 1500  # the gradient-norm spike of issue 13
        lines.append('s:%d trl:%.4f lr:%.6f norm:%.2f' % (i, v, lr_cosine(i, 300, 6e-4), norm))
        n += 1
    c.add('llmc-main.log', '\n'.join(lines) + '\n', n, 'healthy', ev, '--fail-on grad_spike',
          "karpathy/llm.c logger (train_gpt2.cu): s:%d trl:%f lr:%f norm:%f, s:%d tel:%f",
          'llm.c key:value; tel is evaluation; a 1500x gradient-norm spike is a grad_spike event (exit 1)')
    # The printed lines of llm.c's train_gpt2.cu.
    x = curve('gru__momentum__lr10__s7')
    lines = ['+-----------------------+----------------------------------------------------+',
             '| Parameter             | Value                                              |',
             '+-----------------------+----------------------------------------------------+',
             '| train data pattern    | dev/data/tinyshakespeare/tiny_shakespeare_train.bin |',
             '| learning rate (LR)    | 3.000000e-04                                       |',
             '+-----------------------+----------------------------------------------------+']
    n = 0
    for i, v in enumerate(x):
        lines.append('step %4d/%d | loss %7.6f (%+.2fz)| norm %6.4f (%+.2fz)| lr %.2e | %.2f ms | %.1f%% bf16 MFU | '
                     '%.0f tok/s' % (i + 1, len(x), v, 0.1, 1.2, -0.3, 3e-4, 80.0, 45.0, 150000))
        n += 1
        if not math.isfinite(v):
            break
    c.add('llmc-stdout.log', '\n'.join(lines) + '\n', n, 'diverged', 0, '',
          'karpathy/llm.c train_gpt2.cu printf0 "step %4d/%d | loss %7.6f (%+.2fz)| norm ..."',
          'the table of parameters is skipped; a diverging run')


def hf_trainer(c):
    # huggingface/transformers Trainer: the log dicts printed by the progress callback, e.g.
    # {'loss': 2.119, 'grad_norm': 37.65, 'learning_rate': 4.58e-05, 'epoch': 0.25} (PR #35207's log),
    # {'eval_loss': ..., 'eval_runtime': ..., 'epoch': ...} and the final train_runtime summary.
    x = curve('cnn__adam__lr0.0032__s7')
    lines = ['***** Running training *****', '  Num examples = 24000', '  Num Epochs = 3',
             '  Instantaneous batch size per device = 32', '  Total optimization steps = 300']
    n = ev = 0
    for i in range(0, len(x), 10):
        lines.append("{'loss': %s, 'grad_norm': %r, 'learning_rate': %r, 'epoch': %s}"
                     % (round(x[i], 4), 10.0 + i / 30.0, 5e-05 * (1 - i / 300), round(i / 100, 2)))
        n += 1
        if i % 100 == 90:
            lines.append("{'eval_loss': %r, 'eval_accuracy': 0.8, 'eval_runtime': 1.9, 'eval_samples_per_second': "
                         "119.4, 'eval_steps_per_second': 3.7, 'epoch': %s}" % (x[i] * 1.05, (i + 10) / 100))
            ev += 1
    lines.append("{'train_runtime': 120.5, 'train_samples_per_second': 597.5, 'train_steps_per_second': 2.49, "
                 "'train_loss': 0.9123, 'epoch': 3.0}")
    c.add('hf-trainer.log', '\n'.join(lines) + '\n', n, 'healthy', ev, '',
          "huggingface/transformers Trainer log dicts (as in huggingface/transformers PR #35207 and "
          "DAMO-NLP-SG/VideoLLaMA2 issue #157)",
          "Python dicts; eval dicts are evaluation; the final train_runtime summary's train_loss is not an "
          "observation")


def keras_progbar(c, x, epochs, batches, every_k, name, verdict, what, val=True, dup_final=False):
    # keras Progbar (keras/utils/generic_utils.py): with a dynamic display (a terminal, or 'posix' in
    # sys.modules, so also when piped on Linux) each update is "\b" * previous width + "\r" + the bar;
    # the values shown are the means of the epoch so far ("loss: 0.6917 - accuracy: 0.5938", issue
    # AmadeusITGroup/Moire-Pattern-Detection #25); the last update of an epoch ends with "\n" and
    # carries val_loss and val_accuracy.
    out = []
    n = 0
    ev = 0
    width = 0
    for e in range(epochs):
        out.append('Epoch %d/%d\n' % (e + 1, epochs))
        seg = x[e * batches:(e + 1) * batches]
        total = 0.0
        width = 0
        for b in range(1, batches + 1):
            total += seg[b - 1]
            if b % every_k and b != batches and b != 1:  # Keras draws the first update at once
                continue
            mean = total / b
            done = int(30 * b / batches)
            bar = '%*d/%d [%s%s%s]' % (len(str(batches)), b, batches, '=' * max(done - 1, 0),
                                       '>' if b < batches and done > 0 else ('=' if done > 0 else ''),
                                       '.' * (30 - done))
            if b < batches:
                info = ' - ETA: %ds - loss: %.4f - accuracy: %.4f' % ((batches - b) // 10, mean, 0.1 + 0.8 * b / batches)
            else:
                info = ' - 3s 10ms/step - loss: %.4f - accuracy: %.4f' % (mean, 0.5)
                if val and not dup_final:
                    info += ' - val_loss: %.4f - val_accuracy: %.4f' % (mean * 1.05, 0.5)
            text = bar + info
            out.append('\b' * width + '\r' + text)
            width = len(text)
            n += 1
            if b == batches:
                if dup_final and val:
                    text = bar + info + ' - val_loss: %.4f - val_accuracy: %.4f' % (mean * 1.05, 0.5)
                    out.append('\b' * width + '\r' + text)
                out.append('\n')
                if val:
                    ev += 1
    c.add(name, ''.join(out), n, verdict, ev, '',
          'keras Progbar.update (keras/utils/generic_utils.py, dynamic display); logs in keras-team/keras '
          'issue #10506 and AmadeusITGroup/Moire-Pattern-Detection issue #25', what)


def keras(c):
    keras_progbar(c, curve('cnn__adam__lr0.0032__s7'), 3, 100, 5, 'keras-progbar.log', 'healthy',
                  'Keras progress bars redrawn with backspaces and \\r: each update is an observation (the mean of '
                  'the batches since the last one, from the running means), never the accuracy; val_* reported')
    keras_progbar(c, curve('cnn__sgd__lr10__s7'), 3, 100, 10, 'keras-progbar-dup.log', 'diverged',
                  'the last update of an epoch drawn again with the validation values is not a second observation',
                  dup_final=True)
    # verbose=2: one line per epoch ("1079/1079 - 21s - loss: 0.2431 - 21s/epoch - 19ms/step", issue
    # JesperDramsch/keras-complex #22); a per-epoch log of 30 epochs that never learns: stagnant.
    x = block_means(curve('cnn__adam__lr1e-5__s7'), 10)
    lines = []
    for e, v in enumerate(x):
        lines.append('Epoch %d/%d' % (e + 1, len(x)))
        lines.append('1079/1079 - 11s - loss: %.4f - val_loss: %.4f - 11s/epoch - 10ms/step' % (v, v * 1.01))
    c.add('keras-verbose2.log', '\n'.join(lines) + '\n', len(x), 'stagnant', len(x), '',
          'keras Progbar verbose=2 (keras-team/keras generic_utils.py; JesperDramsch/keras-complex issue #22)',
          'a per-epoch log of 30 points is judged at its end: stagnant')


def lightning(c):
    # Lightning CSVLogger metrics.csv: a header, then one row per logging call; a row of the training
    # step leaves the validation columns empty and the reverse (Lightning-AI/pytorch-lightning
    # issues #1629, #4143, #7899).
    x = curve('deep-mlp__adam__lr0.0032__s7')
    rows = ['epoch,step,train_loss,val_acc,val_loss']
    n = ev = 0
    for i in range(4, len(x), 5):
        rows.append('%d,%d,%r,,' % (i // 100, i, round(x[i], 6)))
        n += 1
        if i % 100 == 99:
            rows.append('%d,%d,,0.81,%r' % (i // 100, i, round(x[i] * 1.1, 6)))
            ev += 1
    c.add('lightning-metrics.csv', '\n'.join(rows) + '\n', n, 'healthy', ev, '',
          'Lightning CSVLogger metrics.csv (Lightning-AI/pytorch-lightning issues #1629, #4143, #7899)',
          'CSV with empty fields kept in place: validation rows are evaluation, not training losses')
    # The progress bar (TQDMProgressBar) redrawn with \r; the postfix carries loss=, v_num=.
    x = curve('cnn__momentum__lr0.56__s7')
    out = []
    n = 0
    for e in range(3):
        for b in range(1, 101):  # refresh_rate=1: every batch
            i = e * 100 + b - 1
            pct = b
            filled = '\u2588' * (b // 10)
            out.append('\rEpoch %d:  %d%%|%s%s| %d/100 [00:%02d<00:%02d, 48.20it/s, loss=%.3f, v_num=0]'
                       % (e, pct, filled, ' ' * (10 - b // 10), b, b // 50, (100 - b) // 50, x[i]))
            n += 1
        out.append('\rEpoch %d: 100%%|%s| 100/100 [00:02<00:00, 48.20it/s, loss=%.3f, v_num=0, val_loss=%.3f]\n'
                   % (e, '\u2588' * 10, x[e * 100 + 99], x[e * 100 + 99] * 1.02))
    c.add('lightning-progress.log', ''.join(out), n, 'unstable', 3, '',
          'Lightning TQDMProgressBar (tqdm with a postfix), drawn with \\r',
          'tqdm lines redrawn with \\r; the epoch-end redraw with val_loss is evaluation; a rate too high: '
          'trains a little, then back at the start')


def detectron2(c):
    # detectron2 CommonMetricPrinter: " eta: {eta}  iter: {iter}  {losses}  {time}{data_time}lr: {lr}  {memory}"
    # (facebookresearch/detectron2 issues #195, #3363).
    x = curve('deep-mlp__adam__lr0.0032__s7')
    lines = ['[11/01 11:20:01 d2.engine.train_loop]: Starting training from iteration 0']
    n = 0
    for i in range(19, len(x), 20):
        lines.append('[11/01 11:%02d:%02d d2.utils.events]:  eta: 0:%02d:%02d  iter: %d  total_loss: %.3f  '
                     'loss_cls: %.3f  loss_box_reg: %.3f  time: 0.3322  data_time: 0.0334  lr: %.6f  max_mem: 3961M'
                     % (20 + i // 60, i % 60, (300 - i) // 60, (300 - i) % 60, i, x[i], x[i] * 0.7, x[i] * 0.3,
                        0.01 * min(1.0, (i + 1) / 100)))
        n += 1
    lines.append('[11/01 11:30:00 d2.engine.hooks]: Overall training speed: 298 iterations in 0:01:39 (0.3322 s / it)')
    lines.append('[11/01 11:30:05 d2.evaluation.evaluator]: Start inference on 500 batches')
    c.add('detectron2.log', '\n'.join(lines) + '\n', n, 'healthy', 0, '',
          'detectron2 CommonMetricPrinter (facebookresearch/detectron2 issues #195 and #3363)',
          'total_loss is the training loss, never a component such as loss_cls')


def mmdet(c):
    # mmdetection 2.x TextLoggerHook: "... - mmdet - INFO - Epoch [1][50/7330]\tlr: 2.000e-02, eta: ...,
    # loss_rpn_cls: ..., loss: 1.7" (open-mmlab/mmdetection issues #2672, #4090); validation lines
    # "Epoch(val) [1][2]\taccuracy_top-1: ..." (open-mmlab/mmpretrain issue #360).
    x = curve('deep-mlp__cyclic__lr1__s7')  # NaN at step 91
    lines = []
    n = 0
    for e in range(3):
        for b in range(10, 101, 10):
            i = e * 100 + b - 1
            if i - 9 >= len(x):
                break
            part = x[i - 9:i + 1]
            v = sum(part) / len(part)  # mmcv averages over the logging interval; a NaN stays a NaN
            lines.append('2020-05-08 18:%02d:%02d,649 - mmdet - INFO - Epoch [%d][%d/100]\tlr: 2.000e-02, eta: 1 day, '
                         '3:00:00, time: 0.595, data_time: 0.032, memory: 6836, loss_rpn_cls: %.4f, loss_rpn_bbox: '
                         '0.0477, loss_cls: %.4f, acc: 93.4961, loss_bbox: 0.1484, loss: %.4f'
                         % (e * 10 + b // 10, b % 60, e + 1, b, v * 0.2, v * 0.5, v))
            n += 1
        lines.append('2020-05-08 18:%02d:00,000 - mmdet - INFO - Saving checkpoint at %d epochs' % (e * 10 + 10, e + 1))
        lines.append('[>>>>>>>>>>>>>>>>>>>>>>>>>>>>] 50/50, 163.1 task/s, elapsed: 0s, ETA:     0s')
        lines.append('2020-05-08 18:%02d:01,000 - mmdet - INFO - Epoch(val) [%d][50]\tbbox_mAP: 0.1230, '
                     'bbox_mAP_50: 0.2500' % (e * 10 + 10, e + 1))
    c.add('mmdet.log', '\n'.join(lines) + '\n', n, 'diverged', 0, '',
          'mmdetection 2.x TextLoggerHook (open-mmlab/mmdetection issues #2672, #4090; mmpretrain #360)',
          'loss, not loss_cls; Epoch(val) lines carry no loss; dates and times are not numbers; interval '
          'means that end in "loss: nan"')
    # mmengine LoggerHook: "... - mmengine - INFO - Epoch(train) [1][10/90]  lr: 1.000e-02  eta: 0:00:25 ...
    # loss: 11.4723", with losses that go negative (open-mmlab/mmengine PR #155's log).
    lines = []
    n = 0
    for i in range(9):
        v = 11.4723 - 9.9 * i + 0.3 * math.sin(i)
        lines.append('04/21 21:03:53 - mmengine - INFO - Epoch(train) [1][%d/90]  lr: 1.000e-02  eta: 0:00:%02d  '
                     'time: 0.010  data_time: 0.000  memory: 0  loss: %.4f' % ((i + 1) * 10, 25 - i, v))
        n += 1
    c.add('mmengine-negative.log', '\n'.join(lines) + '\n', n, 'healthy', 0, '--floor -100',
          'mmengine LoggerHook (open-mmlab/mmengine PR #155, whose log has negative losses)',
          'negative losses are read as numbers; with --floor below them they are judged')


def pytorch_examples(c):
    # pytorch/examples mnist/main.py: 'Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}' and
    # '\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.
    x = curve('cnn__adam__lr0.0032__s7')
    lines = []
    n = ev = 0
    for e in range(3):
        for b in range(0, 100, 10):
            i = e * 100 + b
            lines.append('Train Epoch: %d [%d/6400 (%.0f%%)]\tLoss: %.6f' % (e + 1, b * 64, 100.0 * b / 100, x[i]))
            n += 1
        lines.append('')
        lines.append('Test set: Average loss: %.4f, Accuracy: %d/10000 (%.0f%%)' % (x[e * 100 + 99] * 1.1,
                                                                                      8000 + 500 * e, 80 + 5 * e))
        lines.append('')
        ev += 1
    c.add('pytorch-mnist.log', '\n'.join(lines) + '\n', n, 'healthy', ev, '',
          'pytorch/examples mnist/main.py print statements',
          '"Loss:" is read, "[0/60000 (0%)]" is not a loss; the Test set line is evaluation')
    # word_language_model/main.py: '| epoch {:3d} | {:5d}/{:5d} batches | lr {:02.2f} | ms/batch {:5.2f} |
    # loss {:5.2f} | ppl {:8.2f}' and '| end of epoch {:3d} | time: {:5.2f}s | valid loss {:5.2f} | ...'.
    x = curve('gru__sgd__lr0.01__s7')
    lines = []
    n = ev = 0
    for e in range(3):
        for b in range(20, 101, 20):
            i = e * 100 + b - 1
            lines.append('| epoch %3d | %5d/%5d batches | lr %02.2f | ms/batch %5.2f | loss %5.2f | ppl %8.2f'
                         % (e + 1, b, 100, 20.0, 45.21, x[i], math.exp(x[i])))
            n += 1
        lines.append('-' * 89)
        lines.append('| end of epoch %3d | time: %5.2fs | valid loss %5.2f | valid ppl %8.2f'
                     % (e + 1, 52.43, x[e * 100 + 99], math.exp(x[e * 100 + 99])))
        lines.append('-' * 89)
        ev += 1
    c.add('pytorch-wordlm.log', '\n'.join(lines) + '\n', n, 'stagnant', ev, '',
          'pytorch/examples word_language_model/main.py print statements',
          '"| loss 7.63 |" with "| ... |" separators; "valid loss" is evaluation; 15 points, stagnant')
    # imagenet/main.py ProgressMeter: 'Epoch: [0][  10/5005]\tTime  0.512 ( 0.800)\t...\tLoss 6.9078e+00 (6.9097e+00)'
    # and 'Test: [ 10/196]...'.
    x = curve('deep-mlp__adam__lr0.0032__s7')
    lines = []
    n = ev = 0
    for i in range(0, len(x), 10):
        lines.append('Epoch: [%d][%4d/ 100]\tTime  0.512 ( 0.800)\tData  0.001 ( 0.250)\tLoss %.4e (%.4e)\t'
                     'Acc@1  10.00 ( 11.00)\tAcc@5  50.00 ( 51.00)' % (i // 100, i % 100, x[i], x[i] * 1.02))
        n += 1
        if i % 100 == 90:
            lines.append('Test: [ 10/196]\tTime  0.100 ( 0.200)\tLoss %.4e (%.4e)\tAcc@1  12.00 ( 12.50)'
                         % (x[i] * 1.1, x[i] * 1.1))
            lines.append(' * Acc@1 12.500 Acc@5 52.000')
            ev += 1
    c.add('pytorch-imagenet.log', '\n'.join(lines) + '\n', n, 'healthy', ev, '',
          'pytorch/examples imagenet/main.py ProgressMeter',
          '"Loss 6.9e+00 (6.9e+00)": the value, not the running average; Test lines are evaluation')


def python_logging(c):
    # Python's logging with the common '%(asctime)s - %(levelname)s - %(message)s' format.
    x = curve('sigmoid__adam__lr0.01__s7')
    lines = []
    n = 0
    for i in range(0, len(x), 5):
        lines.append('2024-01-15 10:%02d:%02d,%03d - INFO - Epoch %d, step %d, loss: %.4f'
                     % (i // 60, i % 60, (7 * i) % 1000, i // 100 + 1, i, x[i]))
        n += 1
        if i % 100 == 95:
            lines.append('2024-01-15 10:%02d:%02d,000 - INFO - epoch %d f1 %.4f' % (i // 60, i % 60, i // 100 + 1,
                                                                                    0.5 + i / 1000))
    lines.append('2024-01-15 10:59:59,000 - INFO - done: best f1 0.8123')
    c.add('python-logging.log', '\n'.join(lines) + '\n', n, 'healthy', 0, '',
          "Python logging, format '%(asctime)s - %(levelname)s - %(message)s'",
          'the F1 score on the last line is not a loss; timestamps are not numbers')


def json_lines(c):
    x = curve('gru__adam__lr0.01__s7')
    lines = []
    n = ev = 0
    for i, v in enumerate(x):
        if i % 3:
            continue
        lines.append('{"step": %d, "loss": %.5f, "lr": %g, "grad_norm": %.3f}' % (i, v, lr_cosine(i, 300, 1e-3),
                                                                                 1.2 + 0.1 * math.cos(i)))
        n += 1
        if i % 60 == 0:
            lines.append('{"step": %d, "val_loss": %.5f, "val_acc": 0.41}' % (i, v * 1.02))
            ev += 1
    c.add('metrics.jsonl', '\n'.join(lines) + '\n', n, 'healthy', ev, '', 'JSON Lines (one object per step)',
          'JSON objects; val_loss objects are evaluation')
    # W&B-style keys with slashes and _step
    x = curve('cnn__adam__lr1e-5__s7')
    lines = []
    n = 0
    for i in range(0, len(x), 2):
        lines.append('{"_step": %d, "train/loss": %.5f, "train/lr": 1e-05, "_runtime": %.1f}' % (i, x[i], i * 0.5))
        n += 1
    c.add('wandb-history.jsonl', '\n'.join(lines) + '\n', n, 'stagnant', 0, '',
          'Weights & Biases history rows ({"_step": ..., "train/loss": ...})', 'keys with slashes; _step is the step')


def plain(c):
    x = curve('cnn__adam__lr0.0032__s7')
    c.add('plain.txt', ''.join('%.6g\n' % v for v in x), len(x), 'healthy', 0, '', 'one loss per line', 'plain numbers')
    c.add('plain-cr.txt', ''.join('%.6g\r' % v for v in x), len(x), 'healthy', 0, '', "printf '1\\r2\\r3\\r'",
          'CR-only line endings: each value is a line')
    c.add('plain-bom.txt', '\ufeff' + ''.join('%.6g\r\n' % v for v in x), len(x), 'healthy', 0, '',
          'a file saved by a Windows editor', 'a UTF-8 byte-order mark and CRLF')
    rows = ['step\tloss\tlr'] + ['%d\t%.6g\t0.001' % (i, v) for i, v in enumerate(x)]
    c.add('table.tsv', '\n'.join(rows) + '\n', len(x), 'healthy', 0, '', 'a TSV with a header', 'TSV')
    rows = ['| step | loss |', '|---|---|'] + ['| %d | %.4f |' % (i, v) for i, v in every(x, 10)]
    c.add('table.md', '## Training\n\n' + '\n'.join(rows) + '\n\nDone: 15.34%\n', len(rows) - 2, 'healthy', 0, '',
          'a markdown table pasted in an issue', 'markdown: the heading, the separator and "15.34%" are skipped')
    # NUL bytes in the middle of a line (a file written while the machine crashed)
    body = ''.join('%.6g\n' % v for v in x[:150])
    text = body.encode() + b'\x00\x00\x00' + ''.join('%.6g\n' % v for v in x[150:]).encode()
    c.add('plain-nul.txt', text, len(x), 'healthy', 0, '', 'a log with a block of NUL bytes',
          'NUL bytes are dropped from the line (and counted), not a cut', binary=True)


def runs(c):
    # A run resumed from a checkpoint: the step goes back; each run is judged.
    a = curve('cnn__adam__lr0.0032__s7')
    b = curve('cnn__sgd__lr10__s7')
    lines = ['step %d loss %.5f' % (i, v) for i, v in enumerate(a[:200])]
    lines += ['step %d loss %.5f' % (i, v) for i, v in enumerate(b[:200])]
    c.add('two-runs.log', '\n'.join(lines) + '\n', [200, 200], ['healthy', 'diverged'], 0, '',
          'two runs appended to one log file', 'the step goes back: a second run with its own verdict')
    rows = ['step,loss'] + ['%d,%.6g' % (i, v) for i, v in every(a, 2)] + ['step,loss'] + \
        ['%d,%.6g' % (i, v) for i, v in every(b, 2)]
    c.add('two-runs.csv', '\n'.join(rows) + '\n', [150, 150], ['healthy', 'diverged'], 0, '',
          'two CSV files concatenated', 'a repeated header starts a run')
    # Keras-style epochs whose step counter restarts every epoch are one run.
    lines = []
    n = 0
    for e in range(3):
        for s in range(0, 100, 10):
            lines.append('Epoch [%d/3], Step [%d/100], Loss: %.4f' % (e + 1, s, a[e * 100 + s]))
            n += 1
    c.add('epoch-steps.log', '\n'.join(lines) + '\n', n, 'healthy', 0, '',
          "yunjey/pytorch-tutorial 'Epoch [{}/{}], Step [{}/{}], Loss: {:.4f}'",
          'a step that restarts each epoch while the epoch goes up is one run')


def short_and_special(c):
    # A log that gives back its progress slowly and ends above its start (per-epoch, 25 points).
    rng = random.Random(3)
    pts = []
    for e in range(25):
        v = 2.3 * (0.75 + 0.25 * math.cos(math.pi * e / 10)) if e <= 10 else 2.3 * (0.5 + 0.07 * (e - 10))
        pts.append(v * (1 + 0.01 * rng.uniform(-1, 1)))
    lines = ['epoch %d train_loss %.4f' % (e + 1, v) for e, v in enumerate(pts)]
    c.add('slow-drift.log', '\n'.join(lines) + '\n', len(pts), 'unstable', 0, '', 'a per-epoch log',
          'a run that loses its progress slowly and ends above its start is unstable')
    # An all-NaN run: one nonfinite event.
    lines = ['step %d loss nan' % i for i in range(140)]
    c.add('all-nan.log', '\n'.join(lines) + '\n', 140, 'diverged', 0, '', 'a run that was NaN from the start',
          'repeated non-finite observations are one event (checked by tests/test_cli_monitor.py)')
    # An excerpt of a blown-up run that starts after the blow-up: with --classes it is seen.
    x = curve('gru__momentum__lr10__s7')
    part = x[100:]
    lines = ['s:%d trl:%.4f' % (i + 100, v) for i, v in enumerate(part) if math.isfinite(v)]
    c.add('excerpt-blown.log', '\n'.join(lines) + '\n', len(lines), 'diverged', 0, '--classes 65',
          'an excerpt of an llm.c-style log that starts at step 100, already blown up',
          'with --classes the untrained level is known: the excerpt is diverged')
    c.add('excerpt-blown-noinit.log', '\n'.join(lines) + '\n', len(lines), 'stagnant', 0, '',
          'the same excerpt without --classes',
          'without the untrained level a flat excerpt reads as stagnant (documented; the verdict line says the '
          'log starts at step 100)')
    # fairseq train_inner lines (loss=, gnorm=, num_updates=)
    x = curve('gru__adam__lr0.01__s7')
    lines = []
    for i in range(0, 300, 5):
        lines.append('2020-07-17 07:%02d:%02d | INFO | train_inner | epoch 001:   %4d / 300 loss=%.3f, ppl=%.2f, '
                     'wps=57.3, ups=0.04, wpb=1613, bsz=80, num_updates=%d, lr=2.8e-05, gnorm=3.23, train_wall=13, '
                     'wall=%d' % (i // 60, i % 60, i, x[i], math.exp(x[i]), i, 1200 + i))
    c.add('fairseq.log', '\n'.join(lines) + '\n', len(lines), 'healthy', 0, '--step-key num_updates',
          'fairseq train_inner lines (facebookresearch/fairseq issue #2338)', '--step-key names a step field')


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    c = Corpus(sys.argv[1])
    nanogpt(c)
    modded_nanogpt(c)
    llmc(c)
    hf_trainer(c)
    keras(c)
    lightning(c)
    detectron2(c)
    mmdet(c)
    pytorch_examples(c)
    python_logging(c)
    json_lines(c)
    plain(c)
    runs(c)
    short_and_special(c)
    c.write_manifest()
    print('%d logs' % len(c.rows), file=sys.stderr)


if __name__ == '__main__':
    main()
