#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_returns.py - every @return list in the public header names every
error code its function can produce.

What a function "can produce" is computed from the source, mechanically: the
error codes written in its body (-EXXX, MEMPOOL_EXXX, -errno) and, through
the call graph, in the body of every library function it calls (statics and
inline helpers in src/ included). That over-approximates: some codes are
produced deep down and handled on the way up (a retry on -EAGAIN). Each such
code is listed in HANDLED below with the reason it never reaches the caller;
everything else must be in the header. A new `return -EFOO` anywhere a
public function reaches fails this test until the header (or HANDLED, with a
reason) says so.

The header side: the text after @return in the function's doc comment, plus
the list of any function it refers to with "as mempool_xxx()". "-errno"
there covers a system call's errno passed through; wording that names no
code ("a negative error") is rejected.

  check_returns.py SOURCE_DIR
"""
import glob
import os
import re
import sys

CODE = re.compile(r'(?<![A-Za-z0-9_])(-E[A-Z0-9]+|MEMPOOL_E[A-Z]+|-errno)\b')
CALL = re.compile(r'\b([a-z_][a-z0-9_]*)\s*\(')
COMMENT = re.compile(r'/\*.*?\*/', re.S)
# A function definition at file level: "type name(args)\n{ ... \n}".
DEFN = re.compile(r'^([A-Za-z_][^\n;{}#]*?)\b([a-z_][a-z0-9_]*)\(([^;{}]*?)\)\s*\n\{'
                  r'(.*?)\n\}', re.M | re.S)
VAGUE = re.compile(r'(a|another) negative error|another error|an error code',
                   re.I)

# Codes produced inside the library and consumed before they reach a public
# function's caller: (function or '*', code) -> reason.
HANDLED = {
    ('*', '-ESTALE'): 'lock_fd() in open: the shm object was replaced, '
        'open_arena retries',
    ('*', '-EBUSY'): 'trylock results inside the reaper and the spiller; '
        'the caller waits or skips that slot',
    ('*', '-EOPNOTSUPP'): 'the io_uring probe: mempool__io_open() falls '
        'back to pwrite on any probe failure',
    ('mempool_close', 'MEMPOOL_EFORKED'): 'the handle check only picks the '
        'cleanup for a forked child; close returns 0',
    ('mempool_open', '-EPERM'): 'open calls mempool_reap() only on a worker '
        'handle and ignores its result',
    ('mempool_open', 'MEMPOOL_EFORKED'): 'the handle is brand new',
    ('mempool_check', '-ENOENT'): 'check_files() counts a missing spill '
        'file and answers MEMPOOL_ECORRUPT',
    ('mempool_repair', '-ENOENT'): 'a missing spill file is what it '
        'repairs; a delete that finds the object gone is skipped',
    ('mempool_chan_close', 'MEMPOOL_EFORKED'): 'the handle check only '
        'decides whether to touch the subscriber count; close returns 0',
    ('mempool_chan_send', '-EAGAIN'): 'qsend_once() says "full" with it; '
        'queue_loop() waits or times out (-ETIMEDOUT)',
    ('mempool_chan_recv', '-EAGAIN'): 'qrecv_once()/brecv_once() say '
        '"empty" with it; queue_loop()/brecv() wait or time out (-ETIMEDOUT)',
    ('mempool_chan_recv', '-EINPROGRESS'): 'brecv_once(): a position '
        'claimed but not written; brecv() waits, then skips it (-EOVERFLOW)',
    ('mempool_name_get', '-ENOENT'): 'nm_lookup()\'s "not bound" becomes '
        'a wait, or -ETIMEDOUT',
    ('mempool_chan_recv', '-ENOENT'): 'mempool__ref_settle() in '
        'brecv_once() is a yes/no test: the slot is re-read and retried',
    ('mempool_destroy', '-ENOTEMPTY'): 'spilldir.c: a directory left '
        'holding only the user\'s own files is kept; dir_remove answers 0',
    ('mempool_destroy', 'MEMPOOL_EUNSAFE'): 'destroy.c: a directory that is '
        'not the pool\'s own is left untouched and destroy goes on (0)',
}
for f in ('mempool_put', 'mempool_put_ex', 'mempool_put_obj', 'mempool_set',
          'mempool_set_ex', 'mempool_set_obj', 'mempool_reserve'):
    HANDLED[(f, '-ENOENT')] = ('alloc_entry() filters -ENOENT out of '
        'make_room (a victim deleted meanwhile); publishing the reservation '
        'the call itself holds cannot find it gone')
    HANDLED[(f, '-EAGAIN')] = ('alloc_entry() retries -EAGAIN from admit() '
        'and make_room() (a victim being written by another worker)')

for f in ('mempool_put', 'mempool_put_ex', 'mempool_set', 'mempool_set_ex'):
    HANDLED[(f, '-ETIMEDOUT')] = ('backahead.c: a large put waits for its '
        'helper thread with mp_futex_wait() and no deadline (UINT64_MAX, '
        'a 50 us cap only to look again) and ignores the result')

# Internal functions whose result is never an error code: the closure does
# not descend into them.
OPAQUE = {
    'mempool__reap_slot': 'returns 1 (reaped) or 0',
    'keeper_get': 'returns the running keeper or NULL: keeper_start()\'s '
        'errors only decide that no keeper runs (sleeps are then capped)',
}

def library_functions(src):
    funcs = {}
    files = glob.glob(os.path.join(src, 'src', '**', '*.c'), recursive=True)
    files += glob.glob(os.path.join(src, 'src', '**', '*.h'), recursive=True)
    for path in files:
        text = COMMENT.sub('', open(path, encoding='utf-8').read())
        for m in DEFN.finditer(text):
            # A void function cannot hand a code to its caller.
            if re.search(r'\bvoid\s*$', m.group(1)):
                funcs.setdefault(m.group(2), [])
                continue
            funcs.setdefault(m.group(2), []).append(m.group(4))
    return funcs


def produced(funcs, name):
    """Codes written in @name and everything it calls, transitively."""
    seen, todo, codes = set(), [name], set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for body in funcs.get(n, []):
            codes |= set(CODE.findall(body))
            todo += [c for c in CALL.findall(body)
                     if c in funcs and c not in OPAQUE]
    return codes


def header_returns(header):
    """name -> (@return text, [functions it refers to with 'as'])."""
    text = open(header, encoding='utf-8').read()
    out = {}
    for m in re.finditer(r'/\*\*((?:[^*]|\*+[^*/])*)\*+/\s*'
                         r'MEMPOOL_API([^(;#]*?)[ *](mempool_[a-z0-9_]+)\s*\(',
                         text, re.S):
        doc, rtype, name = m.group(1), m.group(2), m.group(3)
        if not re.search(r'\b(int|int64_t)\s*$', rtype):
            continue        # returns a string, a number or nothing
        i = doc.find('@return')
        ret = doc[i + len('@return'):] if i >= 0 else None
        if ret is not None:
            ret = re.split(r'@(?:param|brief)\b', ret)[0]
            ret = re.sub(r'\s*\*\s', ' ', ret)
        out[name] = ret
    return out


def documented(rets, name, depth=0):
    ret = rets.get(name)
    if ret is None or depth > 5:
        return set()
    codes = set(CODE.findall(ret))
    if re.search(r'-errno', ret):
        codes.add('-errno')
    for ref in re.findall(r'\bas (mempool_[a-z0-9_]+)\(\)', ret):
        codes |= documented(rets, ref, depth + 1)
    return codes


def main():
    src = sys.argv[1]
    header = os.path.join(src, 'include', 'mempool', 'mempool.h')
    funcs = library_functions(src)
    rets = header_returns(header)
    bad = []
    checked = 0
    for name in sorted(rets):
        ret = rets[name]
        can = produced(funcs, name)
        if name not in funcs:
            bad.append(f'{name}: declared, but no definition found in src/')
            continue
        if ret is None:
            if can:
                bad.append(f'{name}: no @return, but can produce '
                           + ' '.join(sorted(can)))
            continue
        if VAGUE.search(ret):
            bad.append(f'{name}: @return names no code: '
                       f'"{VAGUE.search(ret).group(0)}"')
        doc = documented(rets, name)
        for code in sorted(can - doc):
            if (name, code) in HANDLED or ('*', code) in HANDLED:
                continue
            bad.append(f'{name}: can return {code}, not in its @return list')
        checked += 1
    if bad:
        print('check_returns: %d problem(s):' % len(bad))
        for b in bad:
            print('  ' + b)
        return 1
    print(f'check_returns: {checked} @return lists cover every code the '
          'source can produce')
    return 0


if __name__ == '__main__':
    sys.exit(main())
