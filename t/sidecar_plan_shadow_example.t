#!/usr/bin/perl

# Story: conf-examples/plan-shadow.json, the plan README's "Shadow
# stages" points operators at, run by the real canary-sidecar against a
# real nginx (split "api" with "shadow 0;", as its comment asks).
#
# As shipped it validates (the sidecar starts on it, no plan error) and
# its first stage writes weight 0 with shadow 10.  A copy with its holds
# shortened to 2s and shadow_min_compared to 40 (its 1000 would need
# 10,000 requests) walks: the shadow stage is promoted on a matching
# canary (identical bodies), shadow 0 is written with weight 5, and the
# ladder climbs to the manual 100_percent gate.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use SidecarTest;

my $file = "$FindBin::Bin/../conf-examples/plan-shadow.json";
open my $fh, '<', $file or die "$file: $!";
my $text = do { local $/; <$fh> };
close $fh;

# ---- as shipped: it validates, the first stage is written -----------------

{
    my $s = SidecarTest->new(name => 'plan-shadow-as-shipped',
                             canary_body => 'stable st',
                             split_conf => 'shadow 0;');
    $s->start;
    $s->sidecar(plan_file => $file);

    ok $s->wait_for(sub { ($s->hget('shadow') // '') eq '10' }, 30,
                    'the shadow stage written'),
        'as shipped: the sidecar writes its first stage' or $s->show_log;
    is $s->hget('weight'), '0', 'weight 0';
    like $s->sidecar_log('sidecar-a'), qr/plan-shadow\.json \(6 stages\)/,
        'its 6 stages read' or $s->show_log;
    $s->finish;
}


# ---- a copy with short holds walks ------------------------------------------

{
    my $plan = decode_json($text);
    $_->{hold} = $_->{hold} eq '0s' ? '0s' : '2s' for @{$plan->{stages}};
    $plan->{stages}[0]{slo}{shadow_min_compared} = 40;

    my $s = SidecarTest->new(name => 'plan-shadow-walks',
                             canary_body => 'stable st',
                             split_conf => 'shadow 0;');
    $s->start;
    $s->traffic(clients => 2, rate => 80, pinned_share => 0);
    $s->sidecar(plan => $plan);

    my @seen;
    my $watch = sub {
        my $h = $s->split_hash;
        my $pair = ($h->{weight} // '') . '/' . ($h->{shadow} // '');
        push @seen, $pair unless @seen && $seen[-1] eq $pair;
    };

    ok $s->wait_for(sub { $watch->();
                          ($s->hget('state') // '') eq 'awaiting_resume'
                          || ($s->hget('state') // '') eq 'rolled_back' },
                    120, 'the ladder reaches the manual gate'),
        'the walk ends at a state' or $s->show_log;
    $watch->();
    is $s->hget('state'), 'awaiting_resume',
        'at the manual 100_percent gate, not rolled back'
        or diag join ' ', @seen;
    is_deeply [ grep { !m{/$} } @seen ],
        ['0/10', '5/0', '10/0', '25/0', '50/0'],
        'weight/shadow: the shadow stage, then each stage with shadow 0'
        or diag join ' ', @seen;

    my ($done) = grep { ($_->{from_stage} // '') eq 'shadow' }
                 $s->receipts;
    is $done && $done->{evidence}{shadow}{status}, 'PASS',
        'the shadow stage promoted on its match rate';
    $s->finish;
}

done_testing;
