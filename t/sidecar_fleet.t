#!/usr/bin/perl

# Story: a fleet of two nginx shares one Redis; clients spread over both.
# canary-sidecar reads both canary_status pages and judges the sum
# (requests, errors and latency histograms added bucket by bucket).
# When one nginx goes away it says so and decides on the other; when
# none answers it holds, and never promotes blind, however long the hold
# has passed.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'fleet', nginx => 2);
$s->start;
$s->traffic(clients => 4, rate => 80);

my $plan = fast_plan();
$plan->{stages}[2]{hold} = '1s';

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             20, 'at 20%') or $s->show_log;

my @r = $s->receipts;
is_deeply $r[-1]{nginx}, { answered => 2, asked => 2 },
    'judged on both nginx';

# each nginx sees part of the traffic (the sum is the unit tests' job)
my $split = sub {
    my ($t) = @_;
    my $res = $t->get($t->port('http'),
                      '/canary_status?format=json&split=api&window=5');
    my $w = JSON::PP::decode_json($res->{content})->{splits}{api}{variants};
    return $w->{stable}{window}{requests} + $w->{canary}{window}{requests};
};
my ($n1, $n2) = ($split->($s->nginx(0)), $split->($s->nginx(1)));
cmp_ok $n1, '>', 50, "nginx 1 has traffic ($n1 in 5s)";
cmp_ok $n2, '>', 50, "nginx 2 has traffic ($n2 in 5s)";

# one nginx goes away: decisions go on with the other
$s->stop_nginx(1);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '50_percent' },
             20, 'promoted with one nginx of two') or $s->show_log;

like $s->sidecar_log, qr{api:\ 1/2\ nginx\ answered;
                          \ http://127\.0\.0\.1:\d+/canary_status:
                          \ Couldn't\ connect}x,
    'the log says which nginx did not answer';
is_deeply(($s->receipts)[-1]{nginx}, { answered => 1, asked => 2 },
          'the promotion says it saw one of two');

# none answers: hold, however long after the hold
$s->stop_traffic;
$s->stop_nginx(0);
my $n = () = $s->receipts;

sleep 3;
is scalar(() = $s->receipts), $n, 'no decision without any nginx';
is $s->hget('weight'), '50', 'still at 50%';
like $s->sidecar_log,
    qr{hold: no /canary_status answered; never promoting blind},
    'the log says why';

$s->finish;

done_testing;
