// Package validate is where a change is checked before anything live
// changes, and where the rules that need no host live:
//
//   - staging: every file of a host is written beside its destination
//     (StagedPath: .NAME.rollout-TAG-RUN in the same directory, so the
//     final move is a rename), with its mode, owner and length checked;
//   - file validators: each file's validate command runs with %s replaced
//     by the staged copy, in the same command as the staging (Stage);
//   - the whole-config check: the plan's check command, once the files are
//     in place and before the restart (Check);
//   - preflight: staging and validating on every host of the run, then
//     removing the copies, before any host is drained (Preflight);
//   - the safety rules apply, rollback and validate share (Safety): scope,
//     drain block, a pool of one.
//
// A failure names the file by where it came from (source@commit, see
// plan.Rendered.Origin), never by the temporary staged path, and not by
// host: the same bad file on many hosts is one message, grouped by the
// views. The engine (package rollout) calls this package through its
// Validator interface; Remote is the implementation that runs on the hosts.
package validate
