#!/usr/bin/perl

# Story: the counters live in the shared zone.  "nginx -s reload" keeps
# them (same zone name and size) while the new workers go on counting;
# a reload with another zone size (or name) gets a new zone, from zero,
# and says so in one notice; a restart starts from zero.  nginx -t says
# the size the configuration needs, also when it fits.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');

my $conf = <<"EOF";
    canary_zone canary 4m;

    canary_split app { stable stable_up; canary canary_up; weight 50; }

    ${\ $t->origins }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status { canary_status; }
    }
EOF

sub total {
    my $v = decode_json($t->get($port, '/canary_status')->{content})
            ->{splits}{app}{variants};
    return $v->{stable}{requests} + $v->{canary}{requests};
}

sub send_n {
    my ($n, $tag) = @_;
    my $res = $t->request_many($port,
        [ map { { path => '/', headers => ['X-Tenant-Id' => "$tag$_"] } }
          1 .. $n ]);
    return scalar grep { $_->{status} == 200 } @$res;
}

sub settle {
    my ($want) = @_;
    my $n;
    for (1 .. 40) {
        $n = total();
        last if $n >= $want;
        select undef, undef, undef, 0.05;
    }
    return $n;
}

$t->write_conf($conf, workers => 2);

my ($ok, $out) = $t->nginx_t;
ok($ok, 'nginx -t: ok');
like($out, qr/canary_zone "canary": 4096k, 1 split needs (\d+)k/,
     'nginx -t says the size needed, though the zone is big enough');

($ok, $out) = $t->nginx_t('-q');
ok($ok, 'nginx -t -q: ok');
is($out, '', 'nginx -t -q: quiet, no size') or diag $out;

$t->start;
my $mark = $t->log_mark;

is(send_n(500, 'a'), 500, '500 requests before the reload');
is(settle(500), 500, 'counted 500');

my @old = $t->worker_pids;
$t->reload;
my @new = $t->worker_pids;
ok(!grep({ my $o = $_; grep { $_ == $o } @new } @old),
   'the reload replaced every worker');

is(total(), 500, 'after the reload the zone still holds 500');
is(send_n(300, 'b'), 300, '300 requests after the reload');
is(settle(800), 800, 'the new workers count on top: 800');

# a weight edited in nginx.conf takes effect, the counts stay
(my $edited = $conf) =~ s/weight 50;/weight 0;/;
$t->write_conf($edited, workers => 2);
$t->reload;
is(total(), 800, 'a reload with another weight keeps the counts');
my $d = decode_json($t->get($port, '/canary_status')->{content});
is($d->{splits}{app}{weight}, 0, 'and applies the edited weight');
unlike($t->log_since($mark), qr/resized/,
       'reloads at the same size: no resize notice');

# a reload with a bigger zone: a new zone, the counters start over
(my $bigger = $edited) =~ s/canary_zone canary 4m;/canary_zone canary 8m;/;
$t->write_conf($bigger, workers => 2);
$mark = $t->log_mark;
$t->reload;
is(total(), 0, 'a reload with a bigger zone starts the counters over');
my @notices = grep { /resized/ } split /\n/, $t->log_since($mark);
is(scalar(@notices), 1, 'one notice says so') or diag join "\n", @notices;
like($notices[0] // '',
     qr/\[notice\] .*canary_zone "canary" resized from 4096k to 8192k: (?#
        )counters reset/,
     'with the zone, both sizes and what it means');
is(send_n(10, 'd'), 10, '10 requests after the resize');
is(settle(10), 10, 'counted from zero: 10');

# a reload with the zone renamed: a new zone too, said the same way
(my $renamed = $bigger) =~ s/canary_zone canary 8m;/canary_zone canary2 8m;/;
$t->write_conf($renamed, workers => 2);
$mark = $t->log_mark;
$t->reload;
is(total(), 0, 'a reload with the zone renamed starts the counters over');
@notices = grep { /counters reset/ } split /\n/, $t->log_since($mark);
is(scalar(@notices), 1, 'one notice says so') or diag join "\n", @notices;
like($notices[0] // '',
     qr/\[notice\] .*canary_zone "canary2" replaces "canary" (?#
        )\(8192k to 8192k\): counters reset/,
     'with both names and sizes');
is(send_n(10, 'e'), 10, '10 requests after the rename');
is(settle(10), 10, 'counted from zero: 10');

$t->stop;

# a restart: a new zone, from zero
$t->write_conf($conf, workers => 2);
$mark = $t->log_mark;
$t->start;
is(total(), 0, 'after a restart the counters start from zero');
unlike($t->log_since($mark), qr/resized/,
       'a start is not a resize, though the size differs from before');
is(send_n(10, 'c'), 10, '10 requests after the restart');
is(settle(10), 10, 'counted 10');

$t->stop;

done_testing;
