"""Long videos in segments (DESIGN §5, issue 15): cut at keyframes, each segment swapped as its own task with the
same chosen people, then stream-copied back together with the original audio.

- `keyframes`: where a video can be cut, read from packets without decoding.
- `plan`: the split of one job (segment spans, the people to swap, the one-pass timestamp origin) as plain data.
- `process`: one segment, swapped and encoded video-only with the one-pass run's codec and timestamps.
- `stitch`: the segments remuxed into one file with the original audio, and their reports merged into one.
- `jobs`: the job core's side: fan-out into segment tasks, complete-once segment results, the stitch.
"""
