# See toa-conn.inc.
. /src/tests/profile/toa-conn.inc
