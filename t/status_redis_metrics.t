#!/usr/bin/perl

# Story: an alert on "nginx stopped following Redis" needs Redis health
# in Prometheus, not only in the JSON: canary_redis_connected and
# canary_redis_last_sync_timestamp_seconds follow the connection.  Grafana
# shows the split's state and pins, and an alert waits on a split stuck in
# awaiting_resume or halted: canary_split_info{split,state} 1 and
# canary_pinned_tenants{split,variant} follow what Redis says.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempfile);
use Test::More;
use CanaryTest;
use RedisStory qw(ctl_ok);

my $t = CanaryTest->new;
my $port = $t->port('http');
my $rport = $t->redis_start;

$t->write_conf(<<"EOF");
    canary_zone canary 4m;
    canary_redis 127.0.0.1:$rport interval=200ms timeout=200ms;

    canary_split app { stable stable_up; canary canary_up; }

    ${\ $t->origins }

    server {
        listen 127.0.0.1:$port;
        location = /canary_status { canary_status; }
    }
EOF
$t->start;

sub scrape {
    return $t->get($port, '/canary_status?format=prometheus')->{content};
}

sub metric {
    my ($text, $name) = @_;
    my ($v) = $text =~ /^\Q$name\E (\S+)$/m;
    return $v;
}

my $prom;
for (1 .. 50) {
    $prom = scrape();
    last if (metric($prom, 'canary_redis_connected') // 0) == 1;
    select undef, undef, undef, 0.1;
}

is(metric($prom, 'canary_redis_connected'), 1, 'connected: 1');
cmp_ok(metric($prom, 'canary_redis_last_sync_timestamp_seconds'), '>',
       time - 10, 'last sync is recent');

is(metric($prom, 'canary_split_info{split="app",state=""}'), 1,
   'no state in Redis yet: canary_split_info with state ""');
is(metric($prom, 'canary_pinned_tenants{split="app",variant="canary"}'), 0,
   'no pins yet');

my $redis = "127.0.0.1:$rport";
ctl_ok($redis, 'set-weight', 'app', '10');
ctl_ok($redis, 'pin', 'app', 'canary', 'vip1', 'vip2', 'vip3');
ctl_ok($redis, 'pin', 'app', 'stable', 'old1');
ctl_ok($redis, 'pause', 'app', '--reason', 'metrics test');

for (1 .. 50) {
    $prom = scrape();
    last if defined metric($prom, 'canary_split_info{split="app",'
                                  . 'state="paused"}')
         && metric($prom, 'canary_pinned_tenants{split="app",'
                          . 'variant="canary"}') == 3;
    select undef, undef, undef, 0.1;
}

is(metric($prom, 'canary_split_info{split="app",state="paused"}'), 1,
   'canary_split_info{split="app",state="paused"} 1');
is(scalar(() = $prom =~ /^canary_split_info\{/mg), 1,
   'one canary_split_info series a split: the old state is gone');
is(metric($prom, 'canary_pinned_tenants{split="app",variant="canary"}'), 3,
   'canary_pinned_tenants canary 3');
is(metric($prom, 'canary_pinned_tenants{split="app",variant="stable"}'), 1,
   'canary_pinned_tenants stable 1');
like($prom, qr/^# TYPE canary_split_info gauge$/m, 'an info gauge');
like($prom, qr/^# TYPE canary_pinned_tenants gauge$/m, 'pins: a gauge');

SKIP: {
    skip 'promtool is not installed', 1 unless -x '/usr/bin/promtool';
    my ($fh, $file) = tempfile(DIR => $t->prefix);
    print $fh $prom;
    close $fh;
    is(`/usr/bin/promtool check metrics < $file 2>&1`, '',
       'promtool accepts it without a warning');
}

$t->redis_stop;

for (1 .. 50) {
    $prom = scrape();
    last if (metric($prom, 'canary_redis_connected') // 1) == 0;
    select undef, undef, undef, 0.1;
}
is(metric($prom, 'canary_redis_connected'), 0, 'Redis gone: 0');

$t->allow_log(qr/canary_redis/);
$t->stop;

done_testing;
