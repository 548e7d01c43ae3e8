package ReceiptSchema;

=head1 NAME

ReceiptSchema - validates receipts against docs/receipt.schema.json

=head1 SYNOPSIS

    use ReceiptSchema;

    my $schema = ReceiptSchema->load;         # docs/receipt.schema.json
    my @errors = $schema->validate($text);    # a receipt as written

=head1 DESCRIPTION

A small JSON Schema checker, core Perl only, for what the receipt schema
uses: C<type> (one or a list; C<integer> is a number without a
fraction), C<enum>, C<const>, C<pattern>, C<minLength>, C<minItems>,
C<minimum>,
C<maximum>, C<required>, C<properties>, C<additionalProperties> (a
schema, or C<false>: no other property), C<items>, C<allOf>, C<anyOf>, C<if>/C<then> and C<$ref> to
C<#/$defs/NAME>.  C<format> is an annotation: the schema's C<pattern>s
say what a C<uuid> (version 4) and a timestamp are.  A keyword it does
not know dies, so the schema cannot grow past what is checked.

C<validate> takes the receipt's text, not a decoded one: it decodes it
itself to tell JSON's numbers from strings (C<"30"> is not C<30>).  It
returns the errors, each "PATH: what", none when the receipt conforms.

=cut

use strict;
use warnings;

use B;
use File::Basename qw(dirname);
use JSON::PP;

our $ROOT = dirname(dirname(dirname(__FILE__)));
our $FILE = "$ROOT/docs/receipt.schema.json";

my %ANNOTATION = map { $_ => 1 }
                 qw($schema $id title description format);


sub load {
    my ($class, $file) = @_;

    $file //= $FILE;

    open my $fh, '<', $file or die "ReceiptSchema: $file: $!\n";
    local $/;
    my $schema = JSON::PP->new->decode(scalar <$fh>);

    return bless { root => $schema }, $class;
}


sub validate {
    my ($self, $text) = @_;

    my $r = eval { JSON::PP->new->decode($text) };

    return "not JSON: $@" unless defined $r || !$@;

    my @errors;
    $self->_check($self->{root}, $r, '$', \@errors);

    return @errors;
}


# the JSON type of a decoded value
sub type_of {
    my ($v) = @_;

    return 'null' unless defined $v;
    return 'boolean' if ref $v eq 'JSON::PP::Boolean';
    return 'object' if ref $v eq 'HASH';
    return 'array' if ref $v eq 'ARRAY';

    my $flags = B::svref_2object(\$v)->FLAGS;

    return 'string' if $flags & B::SVp_POK
                       && !($flags & (B::SVp_IOK | B::SVp_NOK));

    return $v == int($v) ? 'integer' : 'number';
}


sub _equal {
    my ($a, $b) = @_;

    my ($ta, $tb) = (type_of($a), type_of($b));

    $ta = 'number' if $ta eq 'integer';
    $tb = 'number' if $tb eq 'integer';

    return 0 if $ta ne $tb;
    return 1 if $ta eq 'null';
    return $a == $b if $ta eq 'number';
    return ($a ? 1 : 0) == ($b ? 1 : 0) if $ta eq 'boolean';
    return $a eq $b if $ta eq 'string';

    return JSON::PP->new->canonical->encode([$a])
           eq JSON::PP->new->canonical->encode([$b]);
}


sub _ref {
    my ($self, $ref) = @_;

    $ref =~ m{^#/\$defs/(\w+)$} && $self->{root}{'$defs'}{$1}
        or die "ReceiptSchema: \$ref $ref not found\n";

    return $self->{root}{'$defs'}{$1};
}


sub _check {
    my ($self, $s, $v, $path, $errors) = @_;

    # a boolean schema: true allows anything, false nothing (as
    # "additionalProperties": false)
    if (ref $s eq 'JSON::PP::Boolean') {
        push @$errors, "$path: not allowed here" unless $s;
        return;
    }

    my $type = type_of($v);

    for my $k (sort keys %$s) {
        my $x = $s->{$k};

        next if $ANNOTATION{$k} || $k eq '$defs';

        if ($k eq '$ref') {
            $self->_check($self->_ref($x), $v, $path, $errors);

        } elsif ($k eq 'type') {
            my @t = ref $x ? @$x : ($x);
            push @$errors, "$path: $type, not " . join(' or ', @t)
                unless grep { $_ eq $type
                              || ($_ eq 'number' && $type eq 'integer') } @t;

        } elsif ($k eq 'enum') {
            push @$errors, "$path: " . _show($v) . ' is not one of '
                           . _show($x)
                unless grep { _equal($v, $_) } @$x;

        } elsif ($k eq 'const') {
            push @$errors, "$path: " . _show($v) . ', not ' . _show($x)
                unless _equal($v, $x);

        } elsif ($k eq 'pattern') {
            push @$errors, "$path: \"$v\" does not match $x"
                if $type eq 'string' && $v !~ /$x/;

        } elsif ($k eq 'minLength') {
            push @$errors, "$path: shorter than $x"
                if $type eq 'string' && length $v < $x;

        } elsif ($k eq 'minItems') {
            push @$errors, "$path: fewer than $x items"
                if $type eq 'array' && @$v < $x;

        } elsif ($k eq 'minimum' || $k eq 'maximum') {
            next unless $type eq 'number' || $type eq 'integer';
            push @$errors, "$path: $v is under $x"
                if $k eq 'minimum' && $v < $x;
            push @$errors, "$path: $v is over $x"
                if $k eq 'maximum' && $v > $x;

        } elsif ($k eq 'required') {
            next unless $type eq 'object';
            push @$errors, map { "$path: no \"$_\"" }
                           grep { !exists $v->{$_} } @$x;

        } elsif ($k eq 'properties') {
            next unless $type eq 'object';
            for my $p (sort keys %$x) {
                $self->_check($x->{$p}, $v->{$p}, "$path.$p", $errors)
                    if exists $v->{$p};
            }

        } elsif ($k eq 'additionalProperties') {
            next unless $type eq 'object';
            for my $p (sort keys %$v) {
                next if $s->{properties} && exists $s->{properties}{$p};
                $self->_check($x, $v->{$p}, "$path.$p", $errors);
            }

        } elsif ($k eq 'items') {
            next unless $type eq 'array';
            $self->_check($x, $v->[$_], "$path\[$_\]", $errors)
                for 0 .. $#$v;

        } elsif ($k eq 'allOf') {
            $self->_check($_, $v, $path, $errors) for @$x;

        } elsif ($k eq 'anyOf') {
            my @all;
            my $ok = 0;
            for my $sub (@$x) {
                my @e;
                $self->_check($sub, $v, $path, \@e);
                $ok = 1, last unless @e;
                push @all, join('; ', @e);
            }
            push @$errors, "$path: none of anyOf: "
                           . join(' | ', map { "($_)" } @all)
                unless $ok;

        } elsif ($k eq 'if') {
            my @e;
            $self->_check($x, $v, $path, \@e);
            $self->_check($s->{then}, $v, $path, $errors)
                if !@e && $s->{then};

        } elsif ($k eq 'then') {
            # with its "if"

        } else {
            die "ReceiptSchema: keyword \"$k\" at $path is not checked\n";
        }
    }
}


sub _show {
    my $v = JSON::PP->new->canonical->allow_nonref->encode($_[0]);

    return length $v > 60 ? substr($v, 0, 57) . '...' : $v;
}


1;
