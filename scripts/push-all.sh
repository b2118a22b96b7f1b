#!/bin/bash
# push-all.sh: a push to everyone on a running server, timed from the
# call to the statistics' SentCount reaching TotalCount: acceptance to
# stored in every inbox (issue 10 point 7; BENCHMARKS.md). The statistics
# are polled with curl, every 10 ms plus curl's own start-up (a few ms),
# so the figure is at most that much late.
#
#   scripts/push-all.sh http://127.0.0.1:PORT SDKAPPID KEY [TIMD_BINARY]
set -euo pipefail
URL=$1; APP=$2; KEY=$3; BIN=${4:-timd}
SIG=$("$BIN" usersig --sdkappid "$APP" --key "$KEY" --identifier administrator)
q="sdkappid=$APP&identifier=administrator&usersig=$SIG&contenttype=json"
s=$(date +%s.%N)
r=$(curl -s "$URL/v4/timpush/push?$q&random=$RANDOM" -d "{\"MsgRandom\":$RANDOM$RANDOM,\"MsgBody\":[{\"MsgType\":\"TIMTextElem\",\"MsgContent\":{\"Text\":\"to everyone\"}}]}")
a=$(date +%s.%N)
id=$(echo "$r" | sed -n 's/.*"TaskId":"\([^"]*\)".*/\1/p')
[ -n "$id" ] || { echo "push failed: $r" >&2; exit 1; }
now=$(date +%s)
while :; do
	st=$(curl -s "$URL/v4/timpush/all_member_push_statistics?$q&random=$RANDOM" \
		-d "{\"StartTime\":$((now - 3600)),\"EndTime\":$((now + 3600)),\"TaskID\":[\"$id\"]}")
	# The task's own counts come first; its PlatformStatistics follow.
	total=$(echo "$st" | grep -o '"TotalCount":[0-9]*' | head -1 | cut -d: -f2)
	sent=$(echo "$st" | grep -o '"SentCount":[0-9]*' | head -1 | cut -d: -f2)
	if [ -n "$total" ] && [ "$total" -gt 0 ] && [ "$sent" = "$total" ]; then break; fi
	sleep 0.01
done
e=$(date +%s.%N)
echo "push to everyone: answered in $(echo "($a - $s) * 1000" | bc) ms; $sent of $total stored $(echo "($e - $s) * 1000" | bc) ms after the call"
