#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gen_man3.py - the section 3 man pages of mempool, from the header.

The public header is the manual: each function's doc comment becomes its
page (NAME from @brief's first sentence, SYNOPSIS from the declaration,
DESCRIPTION, RETURN VALUE from @return, SEE ALSO from the functions the
text names, plus mempool(7)). A deprecated name becomes a ".so" link to the
page of the function that replaced it. Run at build time by man/CMakeLists.txt:

  gen_man3.py HEADER OUTDIR VERSION     writes OUTDIR/<function>.3
  gen_man3.py --list HEADER             prints the function names
"""
import os
import re
import sys

DOC_DECL = re.compile(
    r'/\*\*((?:[^*]|\*+[^*/])*)\*+/\s*'
    r'((?:MEMPOOL_API|static inline)\b[^;{]*?\b(mempool_[a-z0-9_]+)\s*\([^;{]*?\))'
    r'\s*(MEMPOOL_DEPRECATED\("([^"]*)"\))?\s*[;{]', re.S)


def functions(header):
    text = open(header, encoding='utf-8').read()
    out = []
    for m in DOC_DECL.finditer(text):
        doc, decl, name, _, depr = m.groups()
        out.append({'name': name, 'doc': doc, 'decl': decl, 'deprecated': depr})
    return out


def doc_lines(doc):
    lines = []
    for raw in doc.split('\n'):
        raw = re.sub(r'^\s*\*( |$)', '', raw.rstrip())
        lines.append(raw)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def esc(text):
    text = text.replace('\\', '\\e').replace('-', '\\-')
    text = re.sub(r'@c\s+([A-Za-z0-9_>.\-\\]+)', r'\\fB\1\\fR', text)
    text = re.sub(r'@p\s+(\*?[A-Za-z0-9_>.\-\\]+)', r'\\fI\1\\fR', text)
    return text


def roff_block(lines, fill=True):
    """Paragraphs split on blank lines; indented lists kept as they are."""
    out, para = [], []

    def flush():
        if not para:
            return
        indented = any(re.match(r'\s{2,}\S', l) for l in para[1:]) or \
            any(re.match(r'\s*-\s', l) for l in para)
        out.append('.PP')
        if indented or not fill:
            out.append('.nf')
        for l in para:
            l = esc(l if (indented or not fill) else l.strip())
            if l.startswith(('.', "'")):
                l = '\\&' + l
            out.append(l)
        if indented or not fill:
            out.append('.fi')
        para.clear()

    for l in lines:
        if not l.strip():
            flush()
        else:
            para.append(l)
    flush()
    return out


def split_doc(lines):
    """brief, description lines, params [(name, text)], return lines."""
    text = '\n'.join(lines)
    ret = []
    m = re.search(r'@return\b', text)
    if m:
        ret_text = text[m.end():]
        text = text[:m.start()]
        # Anything after the @return list in the same comment stays with it.
        ret = ret_text.split('\n')
        ret[0] = ret[0].strip()
        rest = [l for l in ret[1:] if l.strip()]
        cut = min((len(l) - len(l.lstrip()) for l in rest), default=0)
        ret = [ret[0]] + [l[cut:] for l in ret[1:]]
    params = []
    body = []
    for l in text.split('\n'):
        pm = re.match(r'\s*@param(?:\[[a-z,]+\])?\s+(\S+)\s+(.*)', l)
        if pm:
            params.append([pm.group(1), pm.group(2)])
        elif params and re.match(r'\s{4,}\S', l) and body == []:
            params[-1][1] += ' ' + l.strip()
        elif params and re.match(r'\s{4,}\S', l):
            params[-1][1] += ' ' + l.strip()
        else:
            body.append(l)
    body_text = '\n'.join(body)
    body_text = re.sub(r'@brief\s*', '', body_text)
    body = body_text.split('\n')
    brief = re.sub(r'\s+', ' ', body_text.strip())
    brief = re.split(r'(?<=[.:;])\s', brief)[0].rstrip('.:;')
    return brief, body, params, ret


def page(f, version, names):
    lines = doc_lines(f['doc'])
    brief, body, params, ret = split_doc(lines)
    decl = re.sub(r'^MEMPOOL_API\s+', '', f['decl'])
    decl = re.sub(r'\s*\n\s*', '\n    ', decl.strip())
    out = [
        '.\\" Generated from <mempool/mempool.h> by man/gen_man3.py; '
        'edit the header.',
        '.TH %s 3 "" "mempool %s" "mempool Manual"' % (f['name'].upper(),
                                                         version),
        '.SH NAME',
        '%s \\- %s' % (esc(f['name']), esc(brief[:1].lower() + brief[1:])),
        '.SH SYNOPSIS', '.nf', '.B #include <mempool/mempool.h>', '.PP',
    ]
    out += [esc(l) for l in (decl + ';').split('\n')]
    out += ['.fi', '.PP',
            'Compile and link with \\fIpkg\\-config \\-\\-cflags \\-\\-libs '
            'mempool\\fR (or \\fI\\-lmempool\\fR).',
            '.SH DESCRIPTION']
    out += roff_block(body)
    if params:
        out.append('.PP')
        out.append('Arguments:')
        for name, text in params:
            out += ['.TP', '.I ' + esc(name), esc(text)]
    if ret:
        out.append('.SH RETURN VALUE')
        out += roff_block(ret, fill=False)
    refs = sorted(set(re.findall(r'\b(mempool_[a-z0-9_]+)\(\)', f['doc']))
                  - {f['name']})
    refs = [r for r in refs if r in names]
    out.append('.SH SEE ALSO')
    out += ['.BR %s (3),' % esc(r) for r in refs]
    out.append('.BR mempool (7)')
    return '\n'.join(l for l in out if l != '') + '\n'


def main(argv):
    if argv[1] == '--list':
        for f in functions(argv[2]):
            print(f['name'])
        return 0
    header, outdir, version = argv[1:4]
    os.makedirs(outdir, exist_ok=True)
    fs = functions(header)
    names = {f['name'] for f in fs}
    for f in fs:
        path = os.path.join(outdir, f['name'] + '.3')
        target = None
        if f['deprecated']:
            m = re.search(r'mempool_[a-z0-9_]+', f['deprecated'])
            if m and m.group(0) in names:
                target = m.group(0)
        with open(path, 'w', encoding='utf-8') as fh:
            if target:
                fh.write('.so man3/%s.3\n' % target)
            else:
                fh.write(page(f, version, names))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
