#!/usr/bin/python3
"""Reference values for src/eval: scikit-learn metrics and SciPy statistical tests.

Writes tests/fixtures/eval/metrics.json and tests/fixtures/eval/stats.json. Every case is drawn
from a seeded numpy RandomState, so a rerun writes identical files (for the same numpy, SciPy and
scikit-learn: the files record the versions). Probabilities are float64 and JSON keeps them
exactly (repr round-trips), so both sides see the same doubles.

metrics.json cases (binary and 3-10 classes): labels, probabilities (rows summing to 1) and
scikit-learn's values with labels=range(C) where the function takes it. Some cases have
quantised probabilities (many ties, in the scores and in the argmax), one has a class that is
never predicted and exact zero probabilities (log-loss clipping). Specificity comes from
sklearn.metrics.multilabel_confusion_matrix (tn / (tn + fp)); ECE is not in scikit-learn and is
computed here with numpy from its definition (15 equal-width bins (k/15, (k+1)/15] of the top-class
probability). One case also records roc_curve (drop_intermediate False and True) and
precision_recall_curve for one class.

stats.json: scipy.stats.ttest_rel, scipy.stats.wilcoxon (exact for small n without ties or zeros,
method='approx' with ties, 'auto' with zeros and for n > 50), scipy.stats.binomtest and
scipy.stats.chi2.sf for McNemar's test, numpy mean/std(ddof=1), numpy.percentile.
"""
import json
import os
import sys

import numpy as np
import scipy
import scipy.stats as st
import sklearn
from sklearn import metrics as skm

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
OUT = os.path.join(ROOT, 'tests', 'fixtures', 'eval')


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def make_case(name, seed, n, C, kind='smooth'):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, C, size=n)
    y[:C] = np.arange(C)  # every class occurs
    rng.shuffle(y)
    if kind == 'quantised':
        # Small integer weights: many equal scores within a column and equal maxima within a row.
        w = rng.randint(1, 5, size=(n, C)).astype(np.float64)
        w[np.arange(n), y] += rng.randint(0, 3, size=n)
        p = w / w.sum(axis=1, keepdims=True)
    else:
        z = rng.randn(n, C) + 1.2 * np.eye(C)[y]
        if kind == 'never_predicted':
            z[:, C - 1] -= 4.0  # the last class never wins the argmax
        p = softmax(z)
        if kind == 'never_predicted':
            p[rng.rand(n) < 0.2, C - 1] = 0.0  # exact zeros, some on the true class: log-loss clipping
            p = p / p.sum(axis=1, keepdims=True)
    if C == 2:
        p[:, 0] = 1.0 - p[:, 1]
    return name, y, p


def ece(y, p, bins=15):
    conf = p.max(axis=1)
    pred = p.argmax(axis=1)
    b = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            total += m.sum() / len(y) * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return total


def metrics_case(name, y, p, curves=False):
    C = p.shape[1]
    labels = list(range(C))
    pred = p.argmax(axis=1)
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    mcm = skm.multilabel_confusion_matrix(y, pred, labels=labels)
    spec = [float(m[0, 0] / (m[0, 0] + m[0, 1])) if m[0, 0] + m[0, 1] else 0.0 for m in mcm]
    roc_per = [float(skm.roc_auc_score(y == c, p[:, c])) for c in labels]
    ap_per = [float(skm.average_precision_score(y == c, p[:, c])) for c in labels]
    if C == 2:
        roc_macro = skm.roc_auc_score(y, p[:, 1])
    else:
        roc_macro = skm.roc_auc_score(y, p, multi_class='ovr', average='macro', labels=labels)
    out = {
        'name': name,
        'classes': C,
        'y': y.tolist(),
        'probs': p.tolist(),
        'pred': pred.tolist(),
        'sklearn': {
            'accuracy': skm.accuracy_score(y, pred),
            'balanced_accuracy': skm.balanced_accuracy_score(y, pred),
            'precision_macro': skm.precision_score(y, pred, labels=labels, average='macro', zero_division=0),
            'recall_macro': skm.recall_score(y, pred, labels=labels, average='macro', zero_division=0),
            'f1_macro': skm.f1_score(y, pred, labels=labels, average='macro', zero_division=0),
            'precision_weighted': skm.precision_score(y, pred, labels=labels, average='weighted', zero_division=0),
            'recall_weighted': skm.recall_score(y, pred, labels=labels, average='weighted', zero_division=0),
            'f1_weighted': skm.f1_score(y, pred, labels=labels, average='weighted', zero_division=0),
            'roc_auc_macro': float(roc_macro),
            'mcc': skm.matthews_corrcoef(y, pred),
            'cohen_kappa': skm.cohen_kappa_score(y, pred),
            'log_loss': skm.log_loss(y, p, labels=labels),
            'confusion_matrix': skm.confusion_matrix(y, pred, labels=labels).tolist(),
            'per_class': {
                'precision': prec.tolist(), 'recall': rec.tolist(), 'f1': f1.tolist(), 'support': sup.tolist(),
                'specificity': spec, 'roc_auc': roc_per, 'average_precision': ap_per,
            },
        },
        'numpy': {'ece15': ece(y, p)},
        'never_predicted': [c for c in labels if not (pred == c).any()],
    }
    if curves:
        c = C - 1
        fpr, tpr, thr = skm.roc_curve(y == c, p[:, c], drop_intermediate=False)
        fpr_d, tpr_d, thr_d = skm.roc_curve(y == c, p[:, c], drop_intermediate=True)
        pr, rc, pthr = skm.precision_recall_curve(y == c, p[:, c])
        # scikit-learn 1.2 puts max + 1 in thresholds[0] (later versions: inf); only thresholds[1:] are compared.
        out['curves'] = {
            'class': c,
            'roc': {'fpr': fpr.tolist(), 'tpr': tpr.tolist(), 'thresholds': thr[1:].tolist()},
            'roc_drop_intermediate': {'fpr': fpr_d.tolist(), 'tpr': tpr_d.tolist(), 'thresholds': thr_d[1:].tolist()},
            'pr': {'precision': pr.tolist(), 'recall': rc.tolist(), 'thresholds': pthr.tolist()},
        }
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in out.items()}


def to_py(x):
    if isinstance(x, dict):
        return {k: to_py(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_py(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None  # JSON has no NaN / inf; the tests read null as NaN
    return x


def metrics_fixture():
    cases = [
        make_case('binary_smooth', 1, 60, 2),
        make_case('binary_quantised', 2, 50, 2, 'quantised'),
        make_case('three_smooth', 3, 90, 3),
        make_case('four_never_predicted', 4, 80, 4, 'never_predicted'),
        make_case('five_quantised', 5, 120, 5, 'quantised'),
        make_case('ten_smooth', 6, 200, 10),
    ]
    out = []
    for name, y, p in cases:
        out.append(metrics_case(name, y, p, curves=name in ('binary_quantised', 'five_quantised', 'three_smooth')))
    return out


def wilcoxon_case(name, a, b, method):
    if method == 'auto':
        r = st.wilcoxon(a, b)
    else:
        r = st.wilcoxon(a, b, method=method)
    d = np.asarray(a) - np.asarray(b)
    nz = d[d != 0]
    ties = len(np.unique(np.abs(nz))) < len(nz)
    return {'name': name, 'a': list(map(float, a)), 'b': list(map(float, b)), 'scipy_call': f"wilcoxon(a, b{'' if method == 'auto' else ', method=' + repr(method)})",
            'zeros': int((d == 0).sum()), 'ties': bool(ties), 'statistic': float(r.statistic), 'pvalue': float(r.pvalue)}


def stats_fixture():
    rng = np.random.RandomState(11)
    ttest = []
    for n in (2, 3, 5, 10, 30):
        a = rng.rand(n)
        b = a + rng.randn(n) * 0.05 - 0.02
        r = st.ttest_rel(a, b)
        ttest.append({'a': a.tolist(), 'b': b.tolist(), 'statistic': float(r.statistic), 'pvalue': float(r.pvalue)})
    with np.errstate(all='ignore'):
        same = rng.rand(5)
        r = st.ttest_rel(same, same)
        ttest.append({'a': same.tolist(), 'b': same.tolist(), 'statistic': to_py(r.statistic), 'pvalue': to_py(r.pvalue), 'note': 'identical samples: SciPy gives NaN'})

    wil = []
    for n in (5, 8, 12, 20, 50):
        a = rng.rand(n)
        b = a + rng.randn(n) * 0.1 + 0.03
        wil.append(wilcoxon_case(f'exact_n{n}', a, b, 'auto'))
    wil.append(wilcoxon_case('exact_centre', [1.0, -2.0, -3.0, 4.0], [0.0, 0.0, 0.0, 0.0], 'auto'))
    for n in (8, 15, 40):
        a = np.round(rng.rand(n), 1)
        b = np.round(a + rng.randn(n) * 0.15, 1)
        b[b == a] += 0.1  # no zeros: only ties
        wil.append(wilcoxon_case(f'ties_n{n}', a, b, 'approx'))
    for n in (10, 30):
        a = np.round(rng.rand(n), 2)
        b = a.copy()
        b[n // 3:] = np.round(b[n // 3:] + rng.randn(n - n // 3) * 0.1, 2)
        wil.append(wilcoxon_case(f'zeros_n{n}', a, b, 'auto'))
    a = rng.rand(60)
    wil.append(wilcoxon_case('large_n60', a, a + rng.randn(60) * 0.1 + 0.02, 'auto'))

    mcn = []
    for b_, c_, same_ok, same_bad in ((3, 9, 30, 5), (0, 5, 10, 2), (12, 12, 40, 6), (10, 14, 25, 3), (20, 30, 50, 10), (40, 15, 100, 20), (0, 0, 8, 2), (1, 0, 4, 0)):
        # Two-class labels; A and B right or wrong per the four cells, then shuffled.
        cells = [(True, False)] * b_ + [(False, True)] * c_ + [(True, True)] * same_ok + [(False, False)] * same_bad
        order = rng.permutation(len(cells))
        y = rng.randint(0, 3, size=len(cells))
        pa = [int(y[i]) if cells[k][0] else int((y[i] + 1) % 3) for k, i in zip(order, range(len(cells)))]
        pb = [int(y[i]) if cells[k][1] else int((y[i] + 2) % 3) for k, i in zip(order, range(len(cells)))]
        rec = {'y': y.tolist(), 'predA': pa, 'predB': pb, 'b': b_, 'c': c_}
        if b_ + c_ < 25:
            rec['method'] = 'exact binomial'
            rec['statistic'] = min(b_, c_)
            rec['pvalue'] = 1.0 if b_ + c_ == 0 else float(st.binomtest(min(b_, c_), b_ + c_, 0.5).pvalue)
        else:
            chi = (abs(b_ - c_) - 1) ** 2 / (b_ + c_)
            rec['method'] = 'chi-square, continuity-corrected'
            rec['statistic'] = chi
            rec['pvalue'] = float(st.chi2.sf(chi, 1))
        mcn.append(rec)

    ms = []
    for n in (2, 5, 17):
        v = rng.randn(n) * 3 + 1
        ms.append({'values': v.tolist(), 'mean': float(np.mean(v)), 'std': float(np.std(v, ddof=1))})
    v = rng.rand(37)
    pct = {'values': v.tolist(), 'q': [0.0, 0.025, 0.5, 0.95, 0.975, 1.0], 'percentile': [float(np.percentile(v, q * 100)) for q in (0.0, 0.025, 0.5, 0.95, 0.975, 1.0)]}
    return {'ttest_rel': ttest, 'wilcoxon': wil, 'mcnemar': mcn, 'mean_std': ms, 'percentile': pct}


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {'numpy': np.__version__, 'scipy': scipy.__version__, 'sklearn': sklearn.__version__, 'python': sys.version.split()[0]}
    with open(os.path.join(OUT, 'metrics.json'), 'w') as f:
        json.dump(to_py({'versions': versions, 'cases': metrics_fixture()}), f, indent=1, allow_nan=False)
        f.write('\n')
    with open(os.path.join(OUT, 'stats.json'), 'w') as f:
        json.dump(to_py({'versions': versions, **stats_fixture()}), f, indent=1, allow_nan=False)
        f.write('\n')
    print('wrote', os.path.join(OUT, 'metrics.json'), 'and stats.json')


if __name__ == '__main__':
    main()
