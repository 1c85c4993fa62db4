#!/usr/bin/env python3
"""Tests of the sgdlab tool with text, as a user runs it: `train --data
text:...` (bits per character, the vocabulary in the checkpoint, resume),
`generate` (reproducible for a seed, errors), `case text` (the table and the
JSON on a small corpus), `lr-find` and `sweep` over streams, and the messages
for missing data. The corpus is the committed sample tests/data/text/fortunes
(fortunes-min's 'fortunes'), so that the test needs no package.

usage: test_cli_text.py SGDLAB_EXE DATA_DIR
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cliutil import Cli  # noqa: E402

EXE = os.path.abspath(sys.argv[1])
SAMPLE = os.path.join(os.path.abspath(sys.argv[2]), 'text', 'fortunes')
TMP = tempfile.mkdtemp(prefix='sgdlab-cli-text-')
SMALL = 'tokens-embedding(8)-lstm(32)-dense(vocab)'
cli = Cli(EXE, TMP, timeout=600)
check, run, run_json = cli.check, cli.run, cli.run_json

TEXT = 'text:' + SAMPLE
TRAIN = ['train', '--data', TEXT, '--model', SMALL, '--seq-len', '25', '--batch-size', '8', '--optim',
         'adam:lr=0.01', '--no-progress']

# ---------------------------------------------------------------- help
rc, out, err = run(['train', '--help'])
check(rc == 0 and '--seq-len' in out and 'text:PATH' in out and '--sample' in out, 'train --help mentions text')
rc, out, err = run(['generate', '--help'])
check(rc == 0 and '--prime' in out and '--temperature' in out and '--seed' in out, 'generate --help')
rc, out, err = run(['case', 'text', '--help'])
check(rc == 0 and 'too high' in out and 'decay+clip' in out and '--train-chars' in out, 'case text --help')
rc, out, err = run(['case', '--help'])
check(rc == 0 and 'case text' in out, 'case --help points at case text')
rc, out, err = run(['--help'])
check(rc == 0 and 'generate' in out, 'sgdlab --help lists generate')

# ---------------------------------------------------------------- train
ckpt = os.path.join(TMP, 'lm.ckpt')
rc, res, err = run_json(TRAIN + ['--epochs', '3', '--save', ckpt, '--sample', '80'])
check(rc == 0 and res is not None, 'train on text: exit 0 (%s)' % err[-300:])
if res:
    ep = res['epochs']
    check(len(ep) == 3, 'three epoch records')
    check(all(e['val_bpc'] is not None and abs(e['val_bpc'] - e['val_loss'] / 0.6931471805599453) < 1e-6 for e in ep),
          'val_bpc = val_loss / ln 2')
    check(all(abs(e['val_perplexity'] - 2.718281828459045 ** e['val_loss']) < 1e-6 * e['val_perplexity'] for e in ep),
          'val_perplexity = exp(val_loss)')
    check(ep[2]['val_bpc'] < ep[0]['val_bpc'], 'validation bits per character fall: %s' % [e['val_bpc'] for e in ep])
    check(res['model'].startswith('tokens(25)-embedding(80,8)-lstm(32)-80'), 'canonical spec: %s' % res['model'])
    check(isinstance(res['result'].get('sample'), str) and len(res['result']['sample']) >= 60, 'a sample of 80')
rc, out, err = run(TRAIN + ['--epochs', '1'])
check(rc == 0 and 'val bpc' in out and 'bits per character' in out, 'the table shows bits per character: %r' % out[-400:])
rc, out, err = run(TRAIN + ['--epochs', '1', '--csv'])
check(rc == 0 and out.splitlines()[0].endswith('train_bpc,val_bpc'), 'CSV has bits per character')

# Resume: a run stopped mid-epoch continues on the same data (the same options);
# other data (another vocabulary) is refused.
part = os.path.join(TMP, 'part.ckpt')
rc, res, err = run_json(TRAIN + ['--epochs', '3', '--max-steps', '7', '--save', part])
check(rc == 0 and res is not None, 'stop a text run at step 7 (%s)' % err[-300:])
rc, res, err = run_json(TRAIN + ['--epochs', '3', '--resume', part])
check(rc == 0 and res and len(res['epochs']) == 3, 'resume a text run (%s)' % err[-300:])
other = os.path.join(TMP, 'other.txt')
with open(other, 'w') as f:
    f.write('abcdefgh ' * 400)
rc, out, err = run(['train', '--data', 'text:' + other, '--model', SMALL, '--seq-len', '25', '--batch-size', '8',
                    '--optim', 'adam:lr=0.01', '--epochs', '3', '--resume', ckpt])
check(rc == 2 and 'vocabulary' in err, 'resume on another vocabulary is refused: %r' % err[-300:])

# ---------------------------------------------------------------- generate
rc, a, err = run(['generate', '--resume', ckpt, '--length', '120', '--seed', '3'])
rc2, b, err2 = run(['generate', '--resume', ckpt, '--length', '120', '--seed', '3'])
rc3, c, err3 = run(['generate', '--resume', ckpt, '--length', '120', '--seed', '4'])
check(rc == 0 and rc2 == 0 and rc3 == 0, 'generate: exit 0 (%s)' % err)
check(a == b and a != c, 'the same seed writes the same text, another seed another')
check(len(a.rstrip('\n')) >= 100, 'about 120 characters: %r' % a)
rc, out, err = run(['generate', '--resume', ckpt, '--prime', 'You will ', '--length', '40', '--temperature', '0'])
check(rc == 0 and out.startswith('You will '), 'a prime is printed first: %r' % out)
rc, res, err = run_json(['generate', '--resume', ckpt, '--prime', 'You', '--length', '30'])
check(rc == 0 and res and res['prime'] == 'You' and len(res['text']) >= 25 and res['vocabulary'] == 80,
      'generate --json')
rc, out, err = run(['generate', '--resume', ckpt, '--prime', '\u00fc'])
check(rc == 2 and 'not in the vocabulary' in err, 'a prime outside the vocabulary: %r' % err)
rc, out, err = run(['generate'])
check(rc == 2 and '--resume' in err, 'generate without a checkpoint')
rc, out, err = run(['generate', '--resume', os.path.join(TMP, 'none.ckpt')])
check(rc == 2 and 'none.ckpt' in err, 'generate from a missing file')
mlp = os.path.join(TMP, 'mlp.ckpt')
rc, out, err = run(['train', '--data', 'spirals', '--epochs', '1', '--save', mlp, '--no-progress'])
rc, out, err = run(['generate', '--resume', mlp])
check(rc == 1 and 'vocabulary' in err, 'generate from a checkpoint without a vocabulary: %r' % err)
rc, out, err = run(['generate', '--resume', ckpt, '--temperature', '-1'])
check(rc == 2 and '--temperature' in err, 'a negative temperature')

# ---------------------------------------------------------------- data errors
rc, out, err = run(['train', '--data', 'text:' + os.path.join(TMP, 'missing.txt')])
check(rc == 2 and 'missing.txt' in err, 'a missing text file: %r' % err)
bad = os.path.join(TMP, 'latin1.txt')
with open(bad, 'wb') as f:
    f.write(b'caf\xe9 ' * 1000)
rc, out, err = run(['train', '--data', 'text:' + bad, '--model', SMALL])
check(rc == 2 and 'UTF-8' in err and 'byte 3' in err, 'latin-1 text: %r' % err)
rc, out, err = run(['train', '--data', 'text:' + bad, '--model', SMALL, '--text-bytes', '--seq-len', '20',
                    '--batch-size', '4', '--epochs', '1', '--no-progress'])
check(rc == 0, 'the same as bytes trains (%s)' % err[-200:])
rc, out, err = run(['train', '--data', 'text'], env={'SGDLAB_FORTUNES_DIR': os.path.join(TMP, 'nofortunes')})
check(rc == 2 and 'fortunes' in err and 'apt-get install fortunes' in err, 'missing fortunes: %r' % err)
rc, out, err = run(['train', '--data', TEXT, '--seq-len', '100000'])
check(rc == 2 and 'need at least' in err, 'a text too short for the streams: %r' % err)
rc, out, err = run(['train', '--data', TEXT, '--sample', '10', '--data', 'spirals'])
check(rc == 2 and '--sample' in err, '--sample without text')

# ---------------------------------------------------------------- lr-find and sweep over streams
rc, res, err = run_json(['lr-find', '--data', TEXT, '--model', SMALL, '--batch-size', '8', '--steps', '40',
                         '--optim', 'adam'])
check(rc in (0, 1) and res is not None, 'lr-find on text (%s)' % err[-300:])
rc, res, err = run_json(['sweep', '--data', TEXT, '--model', SMALL, '--batch-size', '8', '--optim', 'adam',
                         '--lrs', '0.01,3', '--steps', '40', '--no-plot', '--schedule', 'constant'])
check(rc == 0 and res is not None and len(res['trials']) == 2, 'sweep on text (%s)' % err[-300:])

# ---------------------------------------------------------------- case text, small
rc, res, err = run_json(['case', 'text', '--data', TEXT, '--model', SMALL, '--seq-len', '25', '--batch-size', '8',
                         '--train-chars', '20000', '--high-lr', '10', '--low-lr', '0.01', '--peak-lr', '0.02', '--sample', '100',
                         '--no-plot', '--save', os.path.join(TMP, 'case.ckpt')])
check(rc in (0, 1) and res is not None, 'case text: JSON (%s)' % err[-300:])
if res:
    names = [t['name'] for t in res['trials']]
    check(names == ['too high', 'lower rate', 'decay+clip', 'guard'], 'the four trials: %s' % names)
    high = res['trials'][0]
    check(high['verdict'] in ('diverged', 'unstable') and high['first_alarm'] is not None,
          'lr 10 is too high: %s, first alarm %s' % (high['verdict'], high['first_alarm']))
    check(res['trials'][3]['rescues'] >= 1, 'the guard rescues the too-high rate')
    low = res['trials'][1]
    check(low['verdict'] != 'diverged' and low['val_bpc'] < high['val_bpc'],
          'the lower rate does better: %s vs %s' % (low['val_bpc'], high['val_bpc']))
    check(all(isinstance(t['sample'], str) for t in res['trials']), 'a sample per trial')
    check(res['saved'] is not None, 'the decay+clip model saved')
rc, out, err = run(['generate', '--resume', os.path.join(TMP, 'case.ckpt'), '--length', '20'])
check(rc == 0, 'generate from the case study\'s model (%s)' % err)
rc, out, err = run(['case', 'text', '--data', 'spirals'])
check(rc == 2 and 'text' in err, 'case text on other data')
rc, out, err = run(['case', 'text', '--frob'])
check(rc == 2 and 'frob' in err, 'case text: unknown option')

shutil.rmtree(TMP, ignore_errors=True)
cli.finish('cli text: OK')
