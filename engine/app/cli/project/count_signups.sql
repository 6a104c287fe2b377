{#
count-signups: the number of signups in the job's window, [window_start, window_end),
stored under the window's start. Running a slot again (a retry, a replay, `cronwright
run --rerun`) rewrites the same row: an idempotent upsert keyed by the minute.
#}
INSERT INTO example.signup_counts (minute, signups)
SELECT {{ window_start }}::timestamptz, count(*)
FROM example.signups
WHERE created_at >= {{ window_start }}::timestamptz
  AND created_at < {{ window_end }}::timestamptz
ON CONFLICT (minute) DO UPDATE SET signups = EXCLUDED.signups, counted_at = now();
