#!/usr/bin/env python3
"""Lines of code in a folder at a git revision: not blank, not comments (`//`, `///`,
`//!`), not inside `#[cfg(test)] mod … { }` blocks; test-only files (`*_fuzz.rs`) left out.

    scripts/code-lines.py REV [FOLDER]      (default folder: src/gateway/)

Prints each file's count, largest first, and the total (issue 14 compares the gateway's).
"""
import subprocess,sys,re
rev=sys.argv[1]; prefix=sys.argv[2] if len(sys.argv)>2 else 'src/gateway/'
files=subprocess.check_output(['git','ls-tree','-r','--name-only',rev,prefix],text=True).split()
tot=0; per={}
for f in files:
    if not f.endswith('.rs') or f.endswith('_fuzz.rs'): continue
    src=subprocess.check_output(['git','show',f'{rev}:{f}'],text=True).split('\n')
    n=0; skip=False; depth=0; pending=False
    for line in src:
        s=line.strip()
        if skip:
            depth+=line.count('{')-line.count('}')
            if depth<=0: skip=False
            continue
        if s.startswith('#[cfg(test)]'):
            pending=True; continue
        if pending:
            pending=False
            if s.startswith('mod ') and s.endswith('{'):
                skip=True; depth=1; continue
            if s.startswith('mod ') and s.endswith(';'):
                continue
        if not s or s.startswith('//'): continue
        n+=1
    per[f]=n; tot+=n
for f,n in sorted(per.items(),key=lambda x:-x[1]): print(n,f)
print('total',tot)
