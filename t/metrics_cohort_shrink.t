#!/usr/bin/perl

# Story: a reload that removes cohorts leaves the slots past the new
# list unused, and a request an old worker still holds counts on its
# cohort's name, never in one of those slots.
#
# gen 1: cohorts a, b, c (0) and d (100), d in the fourth slot; 4
#        requests of d (canary); then 2 long requests of d (3 s, a slow
#        origin) are decided by d in its slot.
# gen 2: cohort d alone: it has the first slot, with its 4 requests.
#        The fourth slot is past the list: it still held "d" (a slot
#        past the list was never cleared), so the long requests, ending
#        in the old worker, were counted there, where nobody sees them:
#        d showed 4 instead of 6.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;

my $t = CanaryTest->new(name => 'cohort-shrink');
my $port = $t->port('http');
my $slow_port = $t->port('slow');

$t->spawn($^X, "$FindBin::Bin/lib/slow_origin.pl", $slow_port, 3000,
          "slow\n");

my $deadline = time + 10;
until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$slow_port")) {
    die "the slow origin does not listen\n" if time > $deadline;
    sleep 0.05;
}

sub conf {
    my (@cohorts) = @_;

    my $weights = join '', map { "        cohort_weight $_->[0] $_->[1];\n" }
                               @cohorts;

    $t->write_conf(<<"EOF", workers => 1);
    canary_zone canary 4m;

    canary_split api {
        stable stable_up;
        canary canary_up;
        weight 0;
        key \$http_x_tenant_id;
        cohort \$http_x_cohort;
$weights    }

${\ $t->origins }
    upstream slow_origin { server 127.0.0.1:$slow_port; }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary api;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /long {
            canary api;
            proxy_pass http://slow_origin;
        }

        location = /canary_status { canary_status; }
    }
EOF
}

# a reload that does not wait for the old worker: it keeps its requests
sub reload_now {
    my %old = map { $_ => 1 } $t->worker_pids(all => 1);
    my $mark = $t->log_mark;

    my ($rc, $out) = $t->_run_nginx('-s', 'reload');
    die "nginx -s reload: exit $rc: $out\n" if $rc;

    my $until = time + 30;

    until (grep({ !$old{$_} } $t->worker_pids) >= 1
           && !grep({ $old{$_} } $t->worker_pids))
    {
        my $since = $t->log_since($mark);
        die "reload refused:\n$since\n" if $since =~ /\[emerg\]/;
        die "reload did not start a new worker:\n$since\n" if time > $until;
        sleep 0.05;
    }

    sleep 0.1;
}

sub traffic {
    my $r = $t->get($port, '/canary_status?split=api');
    die "status: $r->{status}\n" unless $r->{status} == 200;
    return decode_json($r->{content})->{splits}{api}{cohort_traffic};
}

# name -> "stable/canary" requests
sub counts {
    return { map { $_->{name} => "$_->{stable}{requests}/"
                                 . "$_->{canary}{requests}" } @{traffic()} };
}

my $n = 0;

sub send_as {
    my ($c, $k, $want) = @_;

    my $res = $t->route_many($port, [ map {
        { path => '/', headers => [ 'X-Tenant-Id' => 't' . ++$n,
                                    'X-Cohort' => $c ] }
    } 1 .. $k ], clients => 1);

    my @bad = grep { $_->{variant} ne $want || $_->{reason} ne 'cohort' }
                   @$res;
    ok !@bad, "$k of $c on $want" or diag explain $bad[0];
}

sub open_long {
    my ($tenant) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
        or die "connect: $!\n";
    print $s "GET /long HTTP/1.1\r\nHost: t\r\nX-Tenant-Id: $tenant\r\n"
             . "X-Cohort: d\r\nConnection: close\r\n\r\n";
    return $s;
}

sub read_all {
    my ($s, $seconds) = @_;

    my $buf = '';
    my $sel = IO::Select->new($s);
    my $until = time + $seconds;

    while (time < $until) {
        next unless $sel->can_read(0.2);
        my $got = sysread($s, $buf, 65536, length $buf);
        last unless $got;
    }

    return $buf;
}


conf([a => 0], [b => 0], [c => 0], [d => 100]);
$t->start;

send_as('d', 4, 'canary');

my @long = map { open_long("long-$_") } 1 .. 2;

# the old worker has read them and decided: they wait on the slow origin
sleep 0.5;

conf([d => 100]);
reload_now();

is_deeply counts(), { d => '0/4' }, 'd moved to the first slot';

for my $s (@long) {
    like read_all($s, 15), qr{^HTTP/1.1 200 .*slow\n$}s,
        'a long request ends in the old worker';
    close $s;
}

my $ok = 0;
$deadline = time + 10;
until ($ok || time > $deadline) {
    $ok = counts()->{d} eq '0/6';
    sleep 0.1 unless $ok;
}

is_deeply counts(), { d => '0/6' },
    'the long requests count on d, not in the slot past the list';

send_as('d', 1, 'canary');
is_deeply counts(), { d => '0/7' }, 'and the new worker counts on d';

$t->stop;

done_testing;
