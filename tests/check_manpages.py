#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_manpages.py - the man pages cover the public API.

 * every function the header declares with MEMPOOL_API has a section 3 page
   (found independently of the generator, so a function without a doc
   comment, which the generator cannot see, fails here), and no page is left
   for a function the header no longer has;
 * every page has NAME, SYNOPSIS and DESCRIPTION, and RETURN VALUE when the
   function returns int; a ".so" page points at an existing page;
 * mempool(7) has its concept sections and every page it names exists;
 * where man(1) is installed, every page renders without a groff warning.

  check_manpages.py HEADER MAN3_DIR MEMPOOL_7
"""
import os
import re
import shutil
import subprocess
import sys

SECTIONS_7 = ['Pools and workers', 'Objects and DRefs', 'Pins', 'Spilling',
              'Handoff', 'Security model']


def declared(header):
    text = re.sub(r'/\*.*?\*/', '', open(header, encoding='utf-8').read(),
                  flags=re.S)
    out = {}
    for m in re.finditer(r'MEMPOOL_API([^(;#]*?)[ *](mempool_[a-z0-9_]+)\s*\(',
                         text):
        out[m.group(2)] = bool(re.search(r'\b(int|int64_t)\s*$', m.group(1)))
    return out


def render_warnings(path):
    env = dict(os.environ, MANWIDTH='80', LC_ALL='C.UTF-8')
    r = subprocess.run(['man', '--warnings', '-l', path], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, cwd=os.path.dirname(os.path.dirname(path)))
    return r.stderr.strip()


def main(header, man3, man7):
    header, man3, man7 = (os.path.abspath(x) for x in (header, man3, man7))
    bad = []
    funcs = declared(header)
    pages = {f[:-2] for f in os.listdir(man3) if f.endswith('.3')}
    for f in sorted(funcs):
        if f not in pages:
            bad.append(f'{f}: no man page (does it have a /** doc comment?)')
    for pg in sorted(pages - set(funcs)):
        text = open(os.path.join(man3, pg + '.3'), encoding='utf-8').read()
        if 'static inline' not in text:
            bad.append(f'{pg}.3: no such MEMPOOL_API function in the header')
    for pg in sorted(pages):
        path = os.path.join(man3, pg + '.3')
        text = open(path, encoding='utf-8').read()
        m = re.match(r'\.so man3/(\S+)\.3\n$', text)
        if m:
            if m.group(1) not in pages:
                bad.append(f'{pg}.3: .so to a missing page {m.group(1)}.3')
            continue
        need = ['.SH NAME', '.SH SYNOPSIS', '.SH DESCRIPTION']
        if funcs.get(pg):
            need.append('.SH RETURN VALUE')
        for sec in need:
            if sec not in text:
                bad.append(f'{pg}.3: no "{sec[4:]}" section')
        if not re.search(r'\.SH NAME\n%s \\- \S' % re.escape(
                pg.replace('-', '\\-')), text):
            bad.append(f'{pg}.3: NAME line has no description')
    text7 = open(man7, encoding='utf-8').read()
    for sec in SECTIONS_7:
        if '.SS ' + sec not in text7:
            bad.append(f'mempool.7: no "{sec}" section')
    for ref in re.findall(r'\.BR (mempool_[a-z0-9_]+) \(3\)', text7):
        if ref not in pages:
            bad.append(f'mempool.7 names {ref}(3), which has no page')
    if shutil.which('man'):
        for path in [man7] + [os.path.join(man3, p + '.3')
                              for p in sorted(pages)]:
            w = render_warnings(path)
            if w:
                bad.append(f'{os.path.basename(path)}: groff: {w[:200]}')
    if bad:
        print('check_manpages: %d problem(s):' % len(bad))
        for b in bad:
            print('  ' + b)
        return 1
    print(f'check_manpages: {len(funcs)} functions, {len(pages)} pages, '
          'mempool(7) complete')
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:4]))
