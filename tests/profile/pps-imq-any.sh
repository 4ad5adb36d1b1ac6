# See imq-pps.inc.
. /src/tests/profile/imq-pps.inc
