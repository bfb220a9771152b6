#!/bin/sh
# rollout-summary.sh EVENTS.jsonl — turn the JSON lines of
# `rollout apply --ui json` into a Markdown summary: the run and its exit
# code, one row per host with its outcome, the counts, and the next command.
# Used for GitHub's $GITHUB_STEP_SUMMARY and GitLab's summary artifact.
# Needs jq. The field names are the stable ones of docs/json-events.md.
set -eu
events=${1:?usage: rollout-summary.sh EVENTS.jsonl}
if [ ! -s "$events" ]; then
	printf '### rollout\n\nNo events: rollout did not start a run (see the job log).\n'
	exit 0
fi
jq -rs '
  def short: if type == "string" and length == 40 then .[0:7] else (. // "-") end;
  def cell: (. // "") | tostring | gsub("\n"; " ") | gsub("\\|"; "\\|");
  (map(select(.event == "run_start")) | first) as $start
  | (map(select(.event == "run_done")) | last) as $done
  | "### rollout \($start.message // "run") of plan `\($start.plan // "?")` at `\($start.revision | short)`: "
    + (if $done == null then "**no run_done: the run died** (`rollout repair`)"
       else "**\($done.status)** (exit \($done.exit_code))" end),
    "",
    "| host | outcome | revision | message |",
    "|---|---|---|---|",
    (.[] | select(.event == "host_done")
      | "| \(.host) | \(.status) | \(.revision | short) | \(.message | cell) |"),
    "",
    (if $done != null then "counts: " + ($done.counts // {} | to_entries | map("\(.key) \(.value)") | join(", ")) else empty end),
    (if ($done.next // "") != "" then
       (if ($done.message // "") != "" and $done.message != $done.next then "", $done.message else empty end),
       "", "next: `\($done.next)`"
     elif ($done.message // "") != "" then "", "next: `\($done.message)`"
     else empty end)
' "$events"
