"""Reads the report of a `scripts/device-check ... speed` run and prints issue 15's speed table:
synthd's captured step against PyTorch's eager and graph-captured steps at each batch, the
A/B lines (FP32, bfloat16, one-block BatchNorm, the daemon's class-conditional norm), generation,
and each target's verdict, so that a device session ends with the figures in one place.

    python3 Benchmarks/device_speed_table.py FILES_AT/report.txt [QUALITY_FILES_AT/report.txt]
    scripts/score-device-run speed FILES_AT [QUALITY_FILES_AT]          (the same)

Generation's target (50,000 images/s into PNG files *with the class check*) is judged on a
`synthd generate` of 10,000 images or more, the last in the reports: the `quality` part's (30,000
images from a model of all 60,000 images, every sample judged and its nearest real image found
among 6,000 a class), in the same report when one call ran `speed tests quality`, or from a
separate quality run's report given second; else the `train` part's.
`synthd-bench generate` in the speed part has no judge (a fresh generator has nothing for one
to check), so its figure is the write path without the class check.

Only the standard library. A figure the report lacks (a part cut short by its time limit, a
failed run) prints as "-" and its verdict as "not measured".
"""
import re
import sys

CAPTURED = re.compile(r'captured step: ([\d.]+) ms \(([\d.]+) images/s\), (\d+) kernels')
PYTORCH = re.compile(r'pytorch_cuda_(eager|graph)_b(\d+)_images_per_second=([\d.]+)')
GENERATE = re.compile(r'generate sampling=([\d.]+) encoding=([\d.]+) whole=([\d.]+)')
WHOLE = re.compile(r'whole write \(sample, encode, files, manifest\): ([\d.]+) images/s')
BATCH = re.compile(r'### batch (\d+)')
# synthd generate's last line (the class check is on in every part that generates that many).
CHECKED = re.compile(r'wrote (\d+) images to \S+ in ([\d.]+) s \(([\d.]+) images/s\)')

# The A/B sections of device-check's speed part, in the order of their batches there.
SECTIONS = [
    ('### plain FP32 products', 'fp32', [64, 256, 1024]),
    ('### bfloat16 tensor-core products', 'bf16', [64, 256, 1024]),
    ('### every BatchNorm channel in one block', 'one-block norms', [64, 256]),
    ("### the daemon's generator", 'class-conditional norm', [64, 256]),
]


def parse(lines):
    """{(variant, batch): (ms, images/s, operations)}, PyTorch's {(mode, batch): images/s}, generation."""
    synthd, pytorch, generation = {}, {}, {}
    variant, batches, batch = None, [], None
    for line in lines:
        if line.startswith('## '):
            variant, batches, batch = ('tf32' if "synthd's training step" in line else None), [], None
            if 'Generation' in line:
                variant = 'generation'
        section = next((s for s in SECTIONS if line.startswith(s[0])), None)
        if section:
            variant, batches = section[1], list(section[2])
        elif line.startswith('### with bfloat16 products') and variant == 'generation':
            variant = 'generation bf16'
        match = BATCH.match(line)
        if match and variant == 'tf32':
            batch = int(match.group(1))
        match = CAPTURED.search(line)
        if match:
            key = batch if variant == 'tf32' else (batches.pop(0) if batches else None)
            if variant and key is not None:
                synthd[(variant, key)] = (float(match.group(1)), float(match.group(2)), int(match.group(3)))
        match = PYTORCH.search(line)
        if match:
            pytorch[(match.group(1), int(match.group(2)))] = float(match.group(3))
        match = GENERATE.search(line) or WHOLE.search(line)
        if match and variant and variant.startswith('generation'):
            generation[variant] = float(match.groups()[-1])
    return synthd, pytorch, generation


def figure(value, digits=0):
    return '-' if value is None else f'{value:,.{digits}f}'


def table(synthd, pytorch, generation):
    out = ['| batch | synthd TF32, one graph | kernels and products | PyTorch eager | PyTorch graph '
           '| synthd / PyTorch graph | target |',
           '| --- | --- | --- | --- | --- | --- | --- |']
    verdicts = []
    for batch in (64, 256, 1024):
        ours = synthd.get(('tf32', batch))
        eager, graph = pytorch.get(('eager', batch)), pytorch.get(('graph', batch))
        ratio = ours[1] / graph if ours and graph else None
        target = {64: 'at least 1.0 (aim 1.5)', 256: 'at least 1.0'}.get(batch, '(none)')
        out.append(f'| {batch} | {figure(ours and ours[1])} ({figure(ours and ours[0], 3)} ms) | '
                   f'{figure(ours and ours[2])} | {figure(eager)} | {figure(graph)} | '
                   f'{figure(ratio, 2)}x | {target} |')
        if batch in (64, 256):
            verdicts.append(f'training step at batch {batch}: ' + (
                'not measured' if ratio is None else f'{ratio:.2f}x the graph-captured PyTorch: '
                + ('met' if ratio >= 1 else 'NOT met') + (' (aim 1.5x: met)' if batch == 64 and ratio >= 1.5 else '')))
    out += ['', '| variant | ' + ' | '.join(f'batch {b}' for b in (64, 256, 1024)) + ' |', '| --- | --- | --- | --- |']
    for variant in ('tf32', 'fp32', 'bf16', 'one-block norms', 'class-conditional norm'):
        cells = []
        for batch in (64, 256, 1024):
            ours, base = synthd.get((variant, batch)), synthd.get(('tf32', batch))
            if ours is None:
                cells.append('-')
            else:
                relative = '' if variant == 'tf32' or base is None else f', {ours[1] / base[1]:.2f}x TF32'
                cells.append(f'{ours[1]:,.0f}{relative}')
        out.append(f'| {variant} | ' + ' | '.join(cells) + ' |')
    whole, checked = generation.get('generation'), generation.get('checked')
    out += ['', f'generation without the class check (synthd-bench generate: sample, encode, files, manifest): '
            f'{figure(whole)} images/s (bfloat16: {figure(generation.get("generation bf16"))})',
            f'generation with the class check (synthd generate, '
            f'{figure(generation.get("checked images"))} images): {figure(checked)} images/s']
    verdicts.append('generation with the class check: ' + (
        f'not measured (no synthd generate of 10,000 images or more in the reports: run the quality part; without the check: {figure(whole)} images/s)' if checked is None
        else f'{checked:,.0f} images/s against 50,000: ' + ('met' if checked >= 50000 else 'NOT met')))
    best = {b: max(((synthd[(v, b)][1], v) for v in ('tf32', 'bf16') if (v, b) in synthd), default=None) for b in (64, 256)}
    if best[256] and best[256][1] == 'bf16':
        verdicts.append('bfloat16 is faster than TF32 at batch 256: make it the default if its test passed (GPUProducts, Configuration.gpuProducts)')
    return '\n'.join(out + [''] + verdicts)


def checked_generation(lines):
    """The last synthd generate of 10,000 images or more: {'checked': images/s, 'checked images': count}."""
    found = {}
    for line in lines:
        match = CHECKED.search(line)
        if match and int(match.group(1)) >= 10000:
            found = {'checked': float(match.group(3)), 'checked images': float(match.group(1))}
    return found


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    with open(argv[1], encoding='utf-8', errors='replace') as report:
        lines = report.read().splitlines()
    synthd, pytorch, generation = parse(lines)
    generation.update(checked_generation(lines))
    if len(argv) == 3:
        with open(argv[2], encoding='utf-8', errors='replace') as report:
            generation.update(checked_generation(report.read().splitlines()))
    print(table(synthd, pytorch, generation))


if __name__ == '__main__':
    main(sys.argv)
