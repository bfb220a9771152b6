"""Ask ansible-core what it makes of each inventory of the corpus.

Runs, in one Python process (each ansible process costs ~1 s to start),
the code of the ansible command lines themselves for every case:
`ansible-inventory -i INV --list --playbook-dir DIR` and, for every pattern,
`ansible -i INV PATTERN --list-hosts`. Reads the cases as JSON on stdin
([{"inventory", "playbook_dir", "patterns"}]) and writes the answers as JSON
to the file named by the first argument.
"""
import contextlib
import io
import json
import sys

from ansible.cli.adhoc import AdHocCLI
from ansible.cli.inventory import InventoryCLI
from ansible.utils.context_objects import GlobalCLIArgs


def run(cli_cls, argv):
    # CLIARGS is a process-wide singleton: start each command afresh, as a
    # new ansible process would
    GlobalCLIArgs._Singleton__instance = None
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cli = cli_cls(argv)
        try:
            cli.run()
        except SystemExit:
            pass
    return buf.getvalue()


def main():
    cases = json.load(sys.stdin)
    answers = []
    for c in cases:
        text = run(InventoryCLI, ["ansible-inventory", "-i", c["inventory"], "--list",
                                  "--playbook-dir", c["playbook_dir"]])
        answer = {"list": json.loads(text), "hosts": []}
        for p in c["patterns"]:
            try:
                text = run(AdHocCLI, ["ansible", "-i", c["inventory"], p, "--list-hosts"])
                # "  hosts (N):" then one host per line
                answer["hosts"].append([l.strip() for l in text.splitlines()[1:] if l.strip()])
            except Exception as e:  # no host matched: ansible exits with an error
                answer["hosts"].append({"error": str(e)})
        answers.append(answer)
    with open(sys.argv[1], "w") as f:
        json.dump(answers, f)


main()
