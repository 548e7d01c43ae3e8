#!/usr/bin/perl

# Story: a pattern override sits where the exact form does in the order
# of precedence, against what Redis says:
#
#     guard -> rolled back -> kill switch (enabled 0) -> exact overrides
#     -> pattern overrides -> cookie -> pin -> cohort -> weight
#
# At weight 50, a tenant the hash sends to stable is pinned to canary and
# one it sends to canary is pinned to stable: a matching pattern beats
# both pins (reason header), a pattern header that does not match leaves
# the pin; "canary-ctl disable" and "canary-ctl rollback" beat the
# pattern (reasons disabled, rolled_back), and after "enable" / "reset"
# the pattern applies again.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;
use RedisStory qw(redis_split_conf status_json wait_until wait_nodes);

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

$t->write_conf(redis_split_conf($t, redis => "$redis interval=200ms",
                   split => [ 'override X-Canary never stable',
                              'override X-Team ~^ops stable',
                              'override X-User ~*^beta-[0-9]+$ canary',
                              'cookie   canary_pref' ]),
               workers => 2);

$t->start;

ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

sub ctl_ok { RedisStory::ctl_ok($redis, @_) }

sub route {
    my ($tenant, %h) = @_;

    return $t->route($port, '/', { 'X-Tenant-Id' => $tenant, %h });
}

sub is_route {
    my ($d, $side, $reason, $what) = @_;

    subtest $what => sub {
        is $d->{status}, 200, 'status 200';
        is $d->{variant}, $side, "variant $side";
        is $d->{side}, $side, "answered by the $side origin";
        is $d->{reason}, $reason, "reason $reason";
    };
}

my @tenants = map { "tenant-$_" } 1 .. 500;
my ($to_canary) = grep { !CanaryTest::is_canary('', $_, 50) } @tenants;
my ($to_stable) = grep { CanaryTest::is_canary('', $_, 50) } @tenants;

ctl_ok('set-weight', 'app', 50);
ctl_ok('pin', 'app', 'canary', $to_canary);
ctl_ok('pin', 'app', 'stable', $to_stable);

ok wait_until(3, sub { (route($to_canary)->{reason} // '') eq 'pin'
                       && (route($to_stable)->{reason} // '') eq 'pin' }),
   'the pins apply';

is_route(route($to_canary), 'canary', 'pin', "$to_canary: pinned to canary");
is_route(route($to_stable), 'stable', 'pin', "$to_stable: pinned to stable");

# ---- pattern over pin ------------------------------------------------------

is_route(route($to_canary, 'X-Team' => 'ops-eu'), 'stable', 'header',
         'a pattern to stable beats a pin to canary');
is_route(route($to_stable, 'X-User' => 'BETA-12'), 'canary', 'header',
         'a pattern to canary (~*) beats a pin to stable');
is_route(route($to_canary, 'X-Team' => 'dev'), 'canary', 'pin',
         'a pattern header that does not match leaves the pin');
is_route(route($to_stable, 'X-User' => 'beta-12',
               'Cookie' => 'canary_pref=never'), 'canary', 'header',
         'a pattern beats the cookie, over a pin');
is_route(route($to_stable, 'X-User' => 'beta-12', 'X-Canary' => 'never'),
         'stable', 'header', 'an exact override beats a pattern');

# ---- kill switch and rollback beat a pattern -----------------------------------

ctl_ok('disable', 'app');
ok wait_until(3, sub {
       (route($to_stable, 'X-User' => 'beta-1')->{reason} // '') eq 'disabled'
   }), 'the kill switch applies';
is_route(route($to_stable, 'X-User' => 'beta-1'), 'stable', 'disabled',
         'disabled: a matching pattern to canary goes to stable');

ctl_ok('enable', 'app');
ok wait_until(3, sub {
       (route($to_stable, 'X-User' => 'beta-1')->{reason} // '') eq 'header'
   }), 'enable: the pattern applies again';
is_route(route($to_stable, 'X-User' => 'beta-1'), 'canary', 'header',
         'enabled: the pattern sends to canary');

ctl_ok('rollback', 'app', '--reason', 'pattern test');
ok wait_until(3, sub {
       (route($to_stable, 'X-User' => 'beta-1')->{reason} // '')
           eq 'rolled_back'
   }), 'the rollback applies';
is_route(route($to_stable, 'X-User' => 'beta-1'), 'stable', 'rolled_back',
         'rolled back: a matching pattern to canary goes to stable');

ctl_ok('reset', 'app', '--reason', 'pattern test done');
ok wait_until(3, sub {
       (route($to_stable, 'X-User' => 'beta-1')->{reason} // '') eq 'header'
   }), 'reset: the pattern applies again';

$t->stop;
$t->redis_stop;

done_testing;
