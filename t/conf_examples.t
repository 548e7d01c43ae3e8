#!/usr/bin/perl

# Story: the configurations we hand to operators in conf-examples/ are
# complete and valid.  Each one, with only a load_module line put in front
# of it, passes "nginx -p PREFIX -t" against the module we build, without
# a warning; none hides an absolute path that only works on one machine.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $dir = "$CanaryTest::ROOT/conf-examples";

my @required = qw(
    tenant-split-by-header.conf
    cohorts.conf
    overrides-trusted-sources.conf
    several-splits.conf
);

ok(-f "$dir/$_", "conf-examples/$_ exists") for @required;

my @files = sort glob "$dir/*.conf";

for my $file (@files) {
    (my $name = $file) =~ s{.*/}{};

    open my $fh, '<', $file or die "$file: $!";
    my $text = do { local $/; <$fh> };
    close $fh;

    unlike($text, qr/^\s*load_module\b/m,
           "$name: leaves load_module to the installation");

    my $comments = () = $text =~ /^\s*#/mg;
    ok($comments >= 5, "$name: is commented ($comments comment lines)");

    my @absolute = grep { !/^\s*#/
                          && /^\s*(?:pid|error_log|access_log|root)\s+\//
                        } split /\n/, $text;
    is("@absolute", '', "$name: pid and log paths are relative to the prefix");

    like($text, qr/^\s*canary_zone\s/m, "$name: has a canary_zone");
    like($text, qr/^\s*canary_split\s/m, "$name: has a canary_split");

    my $t = CanaryTest->new(name => $name);

    $t->write_conf(undef,
                   raw => "load_module " . $t->module_path . ";\n\n$text");

    my ($ok, $out) = $t->nginx_t;

    ok($ok, "$name: nginx -t accepts it") or diag($out);
    unlike($out, qr/\[(?:warn|emerg|alert|crit)\]/,
           "$name: nginx -t has no warning about it");
}

done_testing;
