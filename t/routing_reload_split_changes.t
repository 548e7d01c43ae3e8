#!/usr/bin/perl

# Story: splits come and go with releases: an operator renames a split for
# each release ("checkout_v41", then "checkout_v42", ...) and reloads.  A
# canary_zone that "nginx -t" accepts for the configuration must keep
# accepting reloads of configurations of the same size: every reload takes
# effect and the new split routes by its own weight, however many splits
# earlier configurations had.
#
# The zone is sized with what the module itself says three splits need
# (the test follows the module's per-split size), and every configuration
# has one split.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');

sub conf {
    my ($zone, @splits) = @_;

    my $splits = join '', map { <<"EOF" } @splits;
    canary_split $_->[0] {
        stable stable_up;
        canary canary_up;
        weight $_->[1];
    }
EOF

    $t->write_conf(<<"EOF");
    canary_zone canary $zone;

$splits
${\ $t->origins }
    server {
        listen 127.0.0.1:$port;
        canary $splits[0][0];

        location / {
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF
}

# what nginx -t says n splits need
sub needed {
    my @splits = map { ["s$_", 5] } 1 .. $_[0];

    conf('32k', @splits);
    my ($ok, $out) = $t->nginx_t;

    $out =~ /at least (\d+)k needed/
        or die "nginx -t does not say what the zone needs:\n$out";

    return $1;
}

my $three = needed(3);
my $zone = "${three}k";

conf($zone, ['rel_1', 100]);
my ($ok, $out) = $t->nginx_t;
ok($ok, "a zone of $zone (what 3 splits need) passes nginx -t for 1 split")
    or diag($out);

$t->start;

my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'tenant' });
is($d->{side}, 'canary', 'rel_1 at weight 100 routes to canary');

# each release renames the split; the weights alternate so that every
# reload visibly takes effect
for my $n (2 .. 8) {
    my $w = $n % 2 ? 100 : 0;
    my $side = $w ? 'canary' : 'stable';

    conf($zone, ["rel_$n", $w]);

    my $reloaded = eval { $t->reload; 1 };

    ok($reloaded, "reload renaming the split to rel_$n is accepted")
        or diag($@);

    $d = $t->route($port, '/', { 'X-Tenant-Id' => 'tenant' });

    ok($d->{side} eq $side && $d->{weight} eq $w,
       "rel_$n at weight $w routes to $side (got $d->{side}, "
       . "\$canary_weight $d->{weight})");
}

$t->stop;

done_testing;
