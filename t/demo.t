#!/usr/bin/perl

# Story: a new user types "make demo" and sees the product work end to
# end: a healthy canary walks every stage to 100%; with FAULT=errors the
# sidecar rolls it back and, with the sidecar stopped, the guard pulls it.
# The demo stops everything it started and leaves no file behind, so it
# can run twice in a row.

use strict;
use warnings;

use FindBin;
use Test::More;

my $demo = "$FindBin::Bin/../scripts/demo";

sub leftovers {
    my @procs = grep { /canary-demo-/ } `ps -eo args`;
    my @dirs = glob('/tmp/canary-demo-*');
    return (scalar @procs, scalar @dirs);
}

my ($p0, $d0) = leftovers();

my $out = `$demo --batch 2>&1`;
is($?, 0, 'the healthy demo exits 0') or diag($out);
like($out, qr/decision: deployment_complete/, 'it reached deployment_complete');
like($out, qr/the canary reached 100%/, 'and says so');
like($out, qr{dashboard: http://127\.0\.0\.1:\d+/canary_status\?format=html},
     'it shows the dashboard URL');
like($out, qr/receipts \(newest first\):\n.*deployment_complete/s,
     'it prints the receipts');
my ($secs) = $out =~ /reached 100% in (\d+)s/;
ok($secs && $secs < 120, "in under two minutes ($secs s)");

my ($p1, $d1) = leftovers();
is($p1, $p0, 'no process left behind');
is($d1, $d0, 'no directory left behind');

$out = `FAULT=errors $demo --batch 2>&1`;
is($?, 0, 'the FAULT=errors demo exits 0') or diag($out);
like($out, qr/decision: sli_violation_detected/, 'a violation was detected');
like($out, qr/decision: rollback_executed/, 'the sidecar rolled back');
like($out, qr/the guard pulled the canary ([\d.]+)s after it broke/,
     'then the guard pulled it with the sidecar stopped');
my ($guard) = $out =~ /the guard pulled the canary ([\d.]+)s/;
note("guard pulled the canary ${\ ($guard // '?')}s after the fault");

my ($p2, $d2) = leftovers();
is($p2, $p0, 'no process left behind after the fault run');
is($d2, $d0, 'no directory left behind after the fault run');

done_testing;
